"""Small networks and helpers shared by the model tests (32 x 32 images)."""

import inspect

#: A two-level U-Net and a two-block PatchGAN: enough to test the train steps quickly.
TINY_GENERATOR = {"channels": (8, 16), "norm": "instance"}
TINY_DISCRIMINATOR = {"base_channels": 8, "depth": 2, "norm": "instance"}


def constructor_arguments(cls) -> set[str]:
    """Names of the arguments ``cls(...)`` takes, following ``**kwargs`` up the base classes."""
    names = set()
    for klass in cls.__mro__:
        parameters = inspect.signature(klass.__init__).parameters
        names |= set(parameters) - {"self", "kwargs"}
        if "kwargs" not in parameters or klass.__name__ == "TranslationGAN":
            return names
    return names


def losses_over_steps(model, x, y, steps: int, key: str = "g_loss") -> list[float]:
    """``key`` as reported by ``steps`` train steps on the same batch."""
    return [model.train_on_batch(x, y, return_dict=True)[key] for _ in range(steps)]
