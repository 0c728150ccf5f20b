"""The methods of ``ellipses.py``: FBP and the learned reconstructions, one function each.

Every method takes the benchmark `Data` (the simulated validation and test
splits of `kerastrans.tomo.ellipses.EllipsesProtocol`) and the `Settings` of
the run, and returns its test reconstructions (`Result`). Nothing here looks
at the test targets: FBP is tuned on the validation split, the networks train
on the train split, validate on the first validation images and reconstruct
the test images with the model of their best validation epoch
(``training.keep_best``; the row's ``model`` names it).

The learned methods keep what they build under ``settings.work``:

- ``datasets/sinogram-<n>``: the first ``n`` train samples of the protocol,
  noisy sinogram -> phantom, plus the first validation samples: every
  network takes sinograms (``kerastrans fit --model automap | fbp-unet | lgd
  | lpd``; the FBP of fbp-unet and AUTOMAP's start use the tuned cut-off);
- ``runs/<method>-<n>``: one `kerastrans.training.fit` run per method,
  trained through ``_training.train``, so a re-run reuses the datasets,
  resumes an interrupted run and reuses a finished one; asking for more
  ``--steps`` continues a finished run.

Scripts import this module as ``from _ellipses_methods import ...``.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
from _training import build_dataset, train, train_timing, translate_stack

from kerastrans.config import Config, DataConfig, ModelConfig, TrainingConfig, Window, to_dict
from kerastrans.tomo.baseline import FbpTuning, tune_fbp
from kerastrans.tomo.ellipses import EllipsesProtocol
from kerastrans.tomo.geometry import GeometrySpec
from kerastrans.tomo.operators import fbp_reconstruct

__all__ = [
    "BUDGETS",
    "METHODS",
    "Budget",
    "Data",
    "Result",
    "Settings",
    "automap_method",
    "build_data",
    "fbp_method",
    "fbp_unet_adversarial_method",
    "fbp_unet_method",
    "lgd_method",
    "lpd_method",
]

#: Window of the targets of every network, ``(base, range)`` in phantom units: [-0.1, 1.1]
#: -> [-1, 1], so that the background (0) and the brightest ellipse (1) lie inside [-1, 1]
#: with a margin (inside the range of a tanh output, not at its asymptotes).
TARGET_WINDOW = (-0.1, 1.2)


@dataclasses.dataclass(frozen=True)
class Budget:
    """How one learned method trains: ``steps`` Adam steps of ``batch_size`` whole images.

    Attributes:
        steps: Optimizer steps (rounded up to whole epochs, see ``steps_per_epoch``).
        batch_size: Images per step.
        learning_rate: Initial Adam rate of the network, decayed by a cosine to 0.
        beta_1: Adam's first-moment decay (0.5 as for GANs; 0.9 for the unrolled
            networks, as Adler & Oktem train them).
        beta_2: Adam's second-moment decay (Adler & Oktem: 0.99).
        clip_norm: Global norm the gradient is clipped to (`None`: no clipping;
            Adler & Oktem: 1).
        steps_per_epoch: Steps between validations and checkpoints (`None`:
            `Settings.steps_per_epoch`).
    """

    steps: int
    batch_size: int
    learning_rate: float
    beta_1: float = 0.5
    beta_2: float = 0.999
    clip_norm: float | None = None
    steps_per_epoch: int | None = None

    def optimizer_fields(self) -> dict[str, float | None]:
        """The `TrainingConfig` fields of this budget's Adam (rate, betas, clipping)."""
        return {
            "g_learning_rate": self.learning_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "clip_norm": self.clip_norm,
        }


#: AUTOMAP's FC learning rate relative to its convolutions' (`kerastrans.nets.ScaledDense`).
AUTOMAP_FC_RATE_SCALE = 0.02

#: How the unrolled networks train: as Adler & Oktem's learned primal-dual, Adam 1e-3 with
#: beta_2 0.99 and the gradient clipped to norm 1. Without the clipping a 32,000-image lgd
#: run in bfloat16 diverged at step 3,100 (training L2 0.0046 -> 0.25, validation 29.66 ->
#: 24.10 dB and still 26.2 a thousand steps later; AMD EPYC, 2026-12-04).
UNROLLED_TRAINING = {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.99, "clip_norm": 1.0}

#: The unrolled networks (`ModelConfig` fields): Adler & Oktem's 10 iterations, CNNs of 32
#: channels (memory 5, the default), zero initial image.
UNROLLED_NETWORK = {"iterations": 10, "unrolled_channels": 32, "initial": "zeros"}

#: Default budgets: a short run (`ellipses.py` documents the long one). Step times differ
#: several-fold between the project's machines: on an idle AMD EPYC, the former AUTOMAP (two
#: small convolutions) 0.41-0.44 s per step of 32, the U-Net ~0.35 s per step of 8 and
#: ~0.49 s with the PatchGAN (progress bar); on a loaded Intel Xeon, 1.5 s and 1.1 s
#: (validation included). AUTOMAP with the U-Net: 0.81-0.95 s per step of 8 (AMX Xeon),
#: 0.49-0.63 s (AMD EPYC, 2026-12-04).
BUDGETS = {
    # AUTOMAP starts at FBP: Adam moves every one of its 90 M FC weights by about the rate
    # at first, so their rate stays well below the FBP weights (mean |w| 0.013):
    # AUTOMAP_FC_RATE_SCALE x 1e-3 = 2e-5, while the convolutions learn at 1e-3. With 2e-5
    # for the whole model (AMX Xeon, 16,000 images) validation rose 0.04 dB per 100 steps.
    # Batch 8 as fbp+unet, whose U-Net it shares (it was 32 with two small convolutions).
    # Its checkpoint (weights and Adam's moments) holds 1.1 GB: written every 100 steps it
    # added ~15 s of wall time to each 48-s epoch (AMD EPYC, 2026-12-05), hence every 250.
    "automap": Budget(steps=500, batch_size=8, learning_rate=1e-3, beta_1=0.9, steps_per_epoch=250),
    # beta_1 0.5 (the GAN setting) let a 16,000-image run in bfloat16 collapse to a constant
    # image after 350 steps (validation 27.1 -> 9.9 dB, AMD EPYC); without a discriminator
    # Adam's usual 0.9 applies.
    "fbp+unet": Budget(steps=800, batch_size=8, learning_rate=1e-3, beta_1=0.9),
    "fbp+unet+adv": Budget(steps=500, batch_size=8, learning_rate=1e-3),
    "lgd": Budget(steps=800, batch_size=4, **UNROLLED_TRAINING),
    "lpd": Budget(steps=800, batch_size=4, **UNROLLED_TRAINING),
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the learned methods need besides the data.

    Attributes:
        work: Folder of the datasets and runs (re-running resumes there).
        train_images: Samples of the protocol's train split the networks learn from.
        budgets: `Budget` of each learned method, by row name.
        validation_images: First validation samples the runs validate on.
        steps_per_epoch: Steps between validations and end-of-epoch checkpoints.
    """

    work: Path
    train_images: int
    budgets: Mapping[str, Budget]
    validation_images: int = 64
    steps_per_epoch: int = 100


@dataclasses.dataclass
class Data:
    """The benchmark data (float32 stacks without a channel axis) and the tuned FBP."""

    protocol: EllipsesProtocol
    validation_inputs: np.ndarray
    validation_targets: np.ndarray
    test_inputs: np.ndarray
    test_targets: np.ndarray
    #: Wall seconds `fbp_tuning` took (0 until it is computed).
    tuning_seconds: float = 0.0

    @functools.cached_property
    def fbp_tuning(self) -> FbpTuning:
        """Hann FBP with the frequency scaling of best mean PSNR on the validation split."""
        start = time.perf_counter()
        tuning = tune_fbp(self.validation_inputs, self.validation_targets, self.geometry)
        self.tuning_seconds = time.perf_counter() - start
        return tuning

    @functools.cached_property
    def test_fbp(self) -> np.ndarray:
        """The tuned FBP of the test sinograms ``(N, 128, 128)``."""
        return self.fbp(self.test_inputs)

    @property
    def geometry(self) -> GeometrySpec:
        """The protocol's geometry."""
        return self.protocol.geometry()

    def fbp(self, sinograms: np.ndarray) -> np.ndarray:
        """The tuned FBP of a stack of sinograms ``(N, 30, 183)``."""
        scaling = self.fbp_tuning.frequency_scaling
        return fbp_reconstruct(sinograms, self.geometry, frequency_scaling=scaling)


@dataclasses.dataclass
class Result:
    """What a method returns: its test reconstructions ``(N, 128, 128)`` and extra row keys."""

    reconstructions: np.ndarray
    extra: dict


def build_data(n_validation: int, n_test: int) -> tuple[Data, dict]:
    """Simulate the first validation and test samples; return them and a timing row."""
    protocol = EllipsesProtocol()
    stacks, seconds = {}, {}
    for split, count in (("validation", n_validation), ("test", n_test)):
        start = time.perf_counter()
        records = list(protocol.examples(split, count))
        seconds[split] = time.perf_counter() - start
        stacks[split] = [np.stack([r[key][..., 0] for r in records]) for key in ("input", "target")]
    data = Data(protocol, *stacks["validation"], *stacks["test"])
    row = {
        "method": "build-test-data",
        "seconds": seconds["test"],
        "n_test": n_test,
        "ms_per_image": 1e3 * seconds["test"] / max(n_test, 1),
        "validation_seconds": seconds["validation"],
    }
    return data, row


def fbp_method(data: Data, settings: Settings) -> Result:
    """FBP, Hann filter, frequency scaling grid-searched on the validation split."""
    tuning = data.fbp_tuning
    extra = {
        "train_images": 0,
        "train_hours": data.tuning_seconds / 3600.0,
        "frequency_scaling": tuning.frequency_scaling,
        "validation_psnr": tuning.psnr,
        "n_validation": tuning.n,
    }
    return Result(data.test_fbp, extra)


#: The U-Net of ``fbp+unet``: 6 levels of at most 128 channels (down to 4 x 4) instead of the
#: preset's 4 levels of 32-256 (down to 16 x 16), whose receptive field, 33 pixels, is a quarter
#: of the image, while the streaks of a 30-angle FBP cross all of it. Chosen on the validation
#: split (2026-12-05, AMD EPYC; 1,000 steps each; best validation PSNR, wall time of the run):
#: preset 28.37 dB in 312 s; 6 levels of 32-256 channels 28.49 dB in 406 s; 6 levels of 32-128
#: 28.49 dB in 320 s; 5 levels of two convolutions (``down="maxpool_conv"``) 28.57 dB in 573 s.
FBP_UNET_GENERATOR = {"depth": 6, "max_channels": 128}


def automap_method(data: Data, settings: Settings) -> Result:
    """AUTOMAP started at FBP: one linear FC layer (sinogram -> 128 x 128), then a U-Net.

    The reference code's approach (FC layers, then convolutions on their
    output), made the best it can be on this budget: the FC layer starts as
    the tuned FBP's dense matrix (``kerastrans fit --model automap`` with
    ``model.fbp_init=true``: 30 x 183 x 128 x 128 = 90 M weights, linear) and
    the convolutional part, the U-Net of ``fbp+unet`` (`FBP_UNET_GENERATOR`) in place of
    the paper's two convolutions and a deconvolution, adds a correction that starts at
    zero, so training starts at FBP quality. (Two 5 x 5 convolutions of 32
    channels flattened at 25.89 dB; the preset U-Net of ``--model fbp-unet``, 4 levels,
    reached 27.98 dB in 12,500 steps, this one 28.02 dB in 15,000: the FC layer,
    not the U-Net's reach, removes the streaks that cross the image.) L2 loss; the FC
    layer learns at ``AUTOMAP_FC_RATE_SCALE`` times the convolutions' rate. The
    sinogram window is centred on the train split's mean value and holds its
    whole range.
    """
    from kerastrans.models import automap_memory_estimate

    dataset = _sinogram_dataset(data, settings)
    model = ModelConfig(
        kind="automap",
        fc_layers=1,
        fc_activation="none",
        fc_learning_rate_scale=AUTOMAP_FC_RATE_SCALE,
        fbp_init=True,
        fbp_frequency_scaling=data.fbp_tuning.frequency_scaling,
        generator=to_dict(ModelConfig(kind="fbp-unet", generator=FBP_UNET_GENERATOR).generator),
    )
    input_window = _centred_window(dataset)
    config = _config("automap", dataset, settings, model, {}, input_window, augment={})
    result = _learned("automap", config, data.test_inputs, settings)
    shapes = [(*stack.shape[1:], 1) for stack in (data.test_inputs, data.test_targets)]
    estimate = automap_memory_estimate(*shapes, fc_layers=1)
    result.extra.update(
        {
            "fc_parameters": estimate.parameters,
            "fc_memory_gib": estimate.bytes / 2**30,
            "frequency_scaling": data.fbp_tuning.frequency_scaling,
            "sinogram_window_low": input_window.low,
            "sinogram_window_high": input_window.high,
        }
    )
    return result


def fbp_unet_method(data: Data, settings: Settings) -> Result:
    """FBP + U-Net (``kerastrans fit --model fbp-unet``): sinogram in, image out, L2.

    The tuned FBP inside the network, then the U-Net of pix2pix made deeper
    (`FBP_UNET_GENERATOR`), which adds a correction to the FBP image (the
    model's default, as FBPConvNet).
    """
    return _fbp_unet("fbp+unet", data, settings, {}, FBP_UNET_GENERATOR)


def fbp_unet_adversarial_method(data: Data, settings: Settings) -> Result:
    """The preset U-Net (4 levels, 32-256 channels) behind FBP with a PatchGAN on the images.

    L1 x 100 + adversarial x 1 (pix2pix's weights).
    """
    losses = {"l1": 100.0, "l2": 0.0, "adversarial": 1.0}
    return _fbp_unet("fbp+unet+adv", data, settings, losses, {})


def lpd_method(data: Data, settings: Settings) -> Result:
    """Learned primal-dual (``kerastrans fit --model lpd``): sinogram in, image out, L2.

    Adler & Oktem's network: 10 unrolled iterations, primal and dual memory 5,
    3-layer CNNs of 32 channels with PReLU, zero initial image, the ray
    transform (TF sparse matrix) normalised by its norm.
    """
    return _unrolled("lpd", data, settings)


def lgd_method(data: Data, settings: Settings) -> Result:
    """Learned gradient descent (``kerastrans fit --model lgd``): 10 iterations, memory 5, L2."""
    return _unrolled("lgd", data, settings)


#: Methods run by the benchmark, by row name, in the order of the table.
METHODS: dict[str, Callable[[Data, Settings], Result]] = {
    "fbp": fbp_method,
    "automap": automap_method,
    "fbp+unet": fbp_unet_method,
    "fbp+unet+adv": fbp_unet_adversarial_method,
    "lgd": lgd_method,
    "lpd": lpd_method,
}


# ----------------------------------------------------------------------------------------------
# Learned methods: datasets, configs, training, prediction.


def _fbp_unet(name: str, data: Data, settings: Settings, losses: dict, generator: dict) -> Result:
    dataset = _sinogram_dataset(data, settings)
    scaling = data.fbp_tuning.frequency_scaling
    model = ModelConfig(kind="fbp-unet", fbp_frequency_scaling=scaling, generator=generator)
    # No flips: the pipeline would flip sinogram and phantom alike, which breaks the pairs.
    config = _config(name, dataset, settings, model, losses, _centred_window(dataset), {})
    result = _learned(name, config, data.test_inputs, settings)
    result.extra["frequency_scaling"] = scaling
    return result


def _unrolled(name: str, data: Data, settings: Settings) -> Result:
    dataset = _sinogram_dataset(data, settings)
    model = ModelConfig(kind=name, **UNROLLED_NETWORK)
    return _learned(
        name,
        _config(name, dataset, settings, model, {}, _centred_window(dataset), augment={}),
        data.test_inputs,
        settings,
    )


def _config(
    name: str,
    dataset: Path,
    settings: Settings,
    model: ModelConfig,
    losses: dict,
    input_window: Window,
    augment: dict,
) -> Config:
    """The `kerastrans.config.Config` of the run of method ``name`` (see `Budget`)."""
    budget = settings.budgets[name]
    steps_per_epoch = min(budget.steps_per_epoch or settings.steps_per_epoch, budget.steps)
    return Config(
        data=DataConfig(
            dataset=str(dataset.resolve()),
            eval_split="validation",
            input_window=input_window,
            target_window=Window(*TARGET_WINDOW),
            augment=augment,
            batch_size=budget.batch_size,
            seed=0,
        ),
        model=model,
        losses=losses or None,
        training=TrainingConfig(
            epochs=-(-budget.steps // steps_per_epoch),
            steps_per_epoch=steps_per_epoch,
            **budget.optimizer_fields(),
            schedule={"kind": "cosine"},
            checkpoint_every=steps_per_epoch,
            grid_images=2,
            # The 2026-12-02 fbp+unet run overfit its fixed-noise sinograms after 2 passes
            # (validation 28.40 dB at epoch 44 of 140, 27.89 at the end): the test images
            # are reconstructed by the model of the best validation epoch.
            keep_best="val_psnr",
        ),
    )


def _learned(name: str, config: Config, test_inputs: np.ndarray, settings: Settings) -> Result:
    """Train (or resume, or reuse) the run of ``config``, then reconstruct ``test_inputs``."""
    from kerastrans.runs import load_run

    print(f"\n== {name}: training", flush=True)
    slug = name.replace("+", "_")
    run_dir = train(config, settings.work / "runs" / f"{slug}-{settings.train_images}")
    run = load_run(run_dir)  # the model of the best validation epoch
    reconstructions = translate_stack(run.translator(), test_inputs, desc=f"{name}: test")
    training = run.config.training
    steps = training.epochs * training.steps_per_epoch
    extra = {
        "train_images": settings.train_images,
        **train_timing(run_dir, steps),
        "steps": steps,
        "batch_size": run.config.data.batch_size,
        "precision": run.config.model.precision,
        "parameters": run.model.generator.count_params(),
        "model": run.source,
    }
    return Result(reconstructions, extra)


def _centred_window(dataset: Path) -> Window:
    """The `Window` centred on the mean input of the train split that holds all its values."""
    from kerastrans.data.records import read_summary

    stats = read_summary(dataset).splits["train"].features["input"]
    half = max(stats.max - stats.mean, stats.mean - stats.min)
    return Window(stats.mean - half, 2.0 * half)


def _sinogram_dataset(data: Data, settings: Settings) -> Path:
    """Noisy sinogram -> phantom: ``train_images`` train samples and the first validation ones."""
    n, count = settings.train_images, min(settings.validation_images, len(data.validation_inputs))
    splits = {
        "train": data.protocol.examples("train", n),
        "validation": _records(data.validation_inputs[:count], data.validation_targets[:count]),
    }
    metadata = {
        **data.protocol.metadata(),
        "train_images": n,
        "validation_images": count,
    }
    path = settings.work / "datasets" / f"sinogram-{n}"
    return build_dataset(path, splits, metadata, "dival ellipses: noisy sinogram -> phantom")


def _records(inputs: np.ndarray, targets: np.ndarray) -> Iterator[dict]:
    """Paired records of stacks without a channel axis (ids ``validation-00000``, ...)."""
    for index, (image, target) in enumerate(zip(inputs, targets, strict=True)):
        yield {
            "input": image[..., None],
            "target": target[..., None],
            "id": f"validation-{index:05d}",
        }
