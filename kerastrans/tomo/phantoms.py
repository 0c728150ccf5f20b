"""Phantoms: random ellipses (as the dival library draws them), Shepp-Logan, FORBILD.

Arrays follow ODL's convention: axis 0 is the first coordinate axis of the
reconstruction space, the same convention the ray transform uses, so a
phantom goes straight into `kerastrans.tomo.operators.ray_transform`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from kerastrans.tomo.geometry import import_odl

__all__ = [
    "ellipse_parameters",
    "ellipses_image",
    "forbild",
    "random_ellipses",
    "shepp_logan",
]

#: Most ellipses in one random-ellipses phantom (dival's ``max_n_ellipse``).
MAX_ELLIPSES = 70
#: Mean number of ellipses, Poisson-distributed and clipped to `MAX_ELLIPSES`.
MEAN_ELLIPSES = 40


def ellipse_parameters(random_state: np.random.RandomState) -> np.ndarray:
    """Draw the ellipses of one phantom exactly as dival's ``EllipsesDataset`` does.

    Values are uniform in ``[-0.4, 1.0)``, half-axes ``0.2 * Exp(1)``,
    centres uniform in ``[-0.9, 0.9)^2`` (relative to the image square
    ``[-1, 1]^2``), rotations uniform in ``[0, 2 pi)``; the number of ellipses
    is Poisson(40) clipped to 70, the others get value 0. The draws happen in
    dival's order so that a seeded ``RandomState`` gives dival's phantoms.

    Args:
        random_state: The generator; advanced by one phantom's draws.

    Returns:
        Float64 array ``(70, 6)`` of rows ``(value, axis_1, axis_2, x, y,
        rotation)``, the row format of ``odl.phantom.ellipsoid_phantom``.
    """
    r = random_state
    shape = (MAX_ELLIPSES,)
    value = r.uniform(-0.4, 1.0, shape)
    axis_1 = 0.2 * r.exponential(1.0, shape)
    axis_2 = 0.2 * r.exponential(1.0, shape)
    x = r.uniform(-0.9, 0.9, shape)
    y = r.uniform(-0.9, 0.9, shape)
    rotation = r.uniform(0.0, 2 * np.pi, shape)
    count = min(r.poisson(MEAN_ELLIPSES), MAX_ELLIPSES)
    value[count:] = 0.0
    return np.stack((value, axis_1, axis_2, x, y, rotation), axis=1)


def ellipses_image(parameters: np.ndarray, shape: tuple[int, int] = (128, 128)) -> np.ndarray:
    """Render ellipses and normalise the foreground to ``[0, 1]`` with background 0.

    As dival: the ellipses' values are summed (float32), the minimum is
    subtracted from every non-zero pixel, and the image is divided by its
    maximum.

    Args:
        parameters: Rows ``(value, axis_1, axis_2, x, y, rotation)``, see
            `ellipse_parameters`.
        shape: Image shape in pixels.

    Returns:
        Float32 image of ``shape`` with values in ``[0, 1]``.
    """
    odl = import_odl()
    space = odl.uniform_discr(
        [-shape[0] / 2, -shape[1] / 2], [shape[0] / 2, shape[1] / 2], shape, dtype="float32"
    )
    image = np.array(odl.phantom.ellipsoid_phantom(space, parameters).data, dtype=np.float32)
    image[image != 0.0] -= np.min(image)
    peak = np.max(image)
    if peak > 0:  # an empty phantom (no ellipse drawn) stays all zero
        image /= peak
    return image


def random_ellipses(
    num_images: int | None,
    seed: int | None,
    *,
    shape: tuple[int, int] = (128, 128),
) -> Iterator[np.ndarray]:
    """Yield random-ellipse phantoms, the sequence dival yields for the same seed.

    Args:
        num_images: How many phantoms; ``None`` yields forever.
        seed: Seed of the ``np.random.RandomState``; the dival "ellipses"
            protocol uses 42 (train), 2 (validation) and 1 (test).
        shape: Image shape in pixels (dival: 128 x 128).

    Yields:
        Float32 images of ``shape`` in ``[0, 1]``, background 0.
    """
    random_state = np.random.RandomState(seed)
    produced = 0
    while num_images is None or produced < num_images:
        yield ellipses_image(ellipse_parameters(random_state), shape)
        produced += 1


def shepp_logan(shape: tuple[int, int] = (256, 256), *, modified: bool = True) -> np.ndarray:
    """Return the (modified) Shepp-Logan head phantom from ODL.

    Args:
        shape: Image shape in pixels.
        modified: Use the high-contrast variant (values in ``[0, 1]``).

    Returns:
        Float32 image of ``shape``.
    """
    odl = import_odl()
    space = _unit_space(shape)
    return np.array(odl.phantom.shepp_logan(space, modified=modified).data, dtype=np.float32)


def forbild(shape: tuple[int, int] = (256, 256)) -> np.ndarray:
    """Return the FORBILD head phantom from ODL, as density in g/cm^3 (``[0, 1.8]``).

    Args:
        shape: Image shape in pixels; the phantom is scaled to fill it.

    Returns:
        Float32 image of ``shape``.
    """
    odl = import_odl()
    space = _unit_space(shape)
    return np.array(odl.phantom.forbild(space, value_type="density").data, dtype=np.float32)


def _unit_space(shape: tuple[int, int]):
    odl = import_odl()
    return odl.uniform_discr([-1.0, -1.0], [1.0, 1.0], shape, dtype="float32")
