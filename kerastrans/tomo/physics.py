"""The physics of simulated CT data, image by image: units, photon noise, resolution.

- HU <-> linear attenuation (`hu_to_attenuation`, `attenuation_to_hu`);
- noise of a sinogram: relative white Gaussian noise (`add_white_noise`, as
  dival), or low-dose transmission noise (`transmission_noise`: Poisson
  photon counts `photon_counts`, then the post-log sinogram `post_log`);
- resolution: resampling (`resize_image`) and blur with block averaging
  (`degrade_resolution`).

`kerastrans.tomo.simulate` combines them with the ray transform into datasets.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MU_WATER",
    "RandomState",
    "add_white_noise",
    "attenuation_to_hu",
    "check_order",
    "degrade_resolution",
    "hu_to_attenuation",
    "photon_counts",
    "post_log",
    "resize_image",
    "transmission_noise",
]

#: Linear attenuation of water in 1/mm (20 1/m, as LoDoPaB-CT uses; ~60 keV).
MU_WATER = 0.02
#: Random generators accepted for the noise draws.
RandomState = np.random.RandomState | np.random.Generator


# ------------------------------------------------------------------ units
def hu_to_attenuation(hu: np.ndarray, mu_water: float = MU_WATER) -> np.ndarray:
    """Convert HU to linear attenuation in 1/mm, clipped at 0 (below air).

    Args:
        hu: Image in Hounsfield units.
        mu_water: Attenuation of water in 1/mm, default `MU_WATER`.

    Returns:
        Float32 ``mu_water * (1 + hu / 1000)``, at least 0.

    >>> round(float(hu_to_attenuation(np.float32(1000.0))), 6)
    0.04
    """
    mu = mu_water * (1.0 + np.asarray(hu, dtype=np.float32) / np.float32(1000.0))
    return np.maximum(mu, 0.0).astype(np.float32)


def attenuation_to_hu(mu: np.ndarray, mu_water: float = MU_WATER) -> np.ndarray:
    """Convert linear attenuation in 1/mm to HU (inverse of `hu_to_attenuation`)."""
    return (1000.0 * (np.asarray(mu, dtype=np.float32) / np.float32(mu_water) - 1.0)).astype(
        np.float32
    )


# --------------------------------------------------------- image domain
def resize_image(image: np.ndarray, shape: tuple[int, int], *, order: int = 1) -> np.ndarray:
    """Resample an image to ``shape``, by default bilinearly as dival does before projecting.

    Uses ``skimage.transform.resize(image, shape, order=order)`` (reflect
    mode; anti-aliasing only when shrinking; values clipped to the input's
    range, so higher orders do not overshoot).

    Args:
        image: Image ``(rows, columns)``.
        shape: Output shape in pixels.
        order: Spline order, 0 (nearest) to 5; 1 is bilinear, 3 bicubic.

    Returns:
        Float32 image of ``shape``.

    Raises:
        ValueError: If ``order`` is not an integer from 0 to 5.
    """
    from skimage.transform import resize

    check_order("order", order)
    return resize(np.asarray(image, dtype=np.float32), shape, order=order).astype(np.float32)


def degrade_resolution(image: np.ndarray, factor: int, *, sigma: float | None = None) -> np.ndarray:
    """Blur with a Gaussian and average ``factor x factor`` blocks (super-resolution input).

    Args:
        image: Image ``(rows, columns)``; both sizes must be multiples of ``factor``.
        factor: Down-sampling factor, 2 or 4.
        sigma: Gaussian blur in pixels of the input grid; default
            ``factor / 2`` (a detector/pixel blur about one low-res pixel wide).

    Returns:
        Float32 image ``(rows / factor, columns / factor)``.

    Raises:
        ValueError: On another factor or a shape not divisible by it.
    """
    from scipy.ndimage import gaussian_filter
    from skimage.transform import downscale_local_mean

    if factor not in (2, 4):
        raise ValueError(f"factor must be 2 or 4, got {factor!r}")
    image = np.asarray(image, dtype=np.float32)
    if image.shape[0] % factor or image.shape[1] % factor:
        raise ValueError(f"image shape {image.shape} is not divisible by factor {factor}")
    blurred = gaussian_filter(image, sigma=factor / 2 if sigma is None else sigma, mode="nearest")
    return downscale_local_mean(blurred, (factor, factor)).astype(np.float32)


# ------------------------------------------------------------------ noise
def add_white_noise(
    sinogram: np.ndarray, relative_std: float, random_state: RandomState
) -> np.ndarray:
    """Add Gaussian noise of std ``relative_std * mean(|sinogram|)``, as dival does.

    Args:
        sinogram: One noise-free sinogram.
        relative_std: Noise level relative to the mean absolute value
            (dival "ellipses": 0.025).
        random_state: Generator; one ``normal`` draw of the sinogram's shape.

    Returns:
        Float32 noisy sinogram.
    """
    sinogram = np.asarray(sinogram, dtype=np.float32)
    std = relative_std * float(np.mean(np.abs(sinogram)))
    noise = random_state.normal(loc=0.0, scale=std, size=sinogram.shape).astype(np.float32)
    return sinogram + noise


def photon_counts(
    line_integrals: np.ndarray, photons: float, random_state: RandomState
) -> np.ndarray:
    """Draw detected photon counts ``Poisson(photons * exp(-line_integrals))``.

    Args:
        line_integrals: Noise-free post-log sinogram (attenuation x mm).
        photons: Incident photons per detector pixel ``I0`` (e.g. 4096 for
            LoDoPaB-CT's low dose).
        random_state: Generator.

    Returns:
        Float64 counts, same shape.
    """
    expected = float(photons) * np.exp(-np.asarray(line_integrals, dtype=np.float64))
    return random_state.poisson(expected).astype(np.float64)


def post_log(counts: np.ndarray, photons: float, *, min_counts: float = 0.1) -> np.ndarray:
    """Return the post-log sinogram ``-log(max(counts, min_counts) / photons)``.

    Args:
        counts: Detected photons.
        photons: Incident photons per pixel.
        min_counts: Floor replacing zero counts, which have no logarithm
            (LoDoPaB-CT uses 0.1).

    Returns:
        Float32 line integrals.
    """
    return (-np.log(np.maximum(counts, min_counts) / float(photons))).astype(np.float32)


def transmission_noise(
    line_integrals: np.ndarray,
    photons: float,
    random_state: RandomState,
    *,
    min_counts: float = 0.1,
) -> np.ndarray:
    """Simulate a low-dose measurement: Poisson photon counts, then the post-log sinogram."""
    counts = photon_counts(line_integrals, photons, random_state)
    return post_log(counts, photons, min_counts=min_counts)


# --------------------------------------------------------------- helpers
def check_order(name: str, order: int) -> None:
    """Refuse an ``order`` (argument ``name``) that is not a spline order from 0 to 5."""
    if isinstance(order, bool) or order not in range(6):
        raise ValueError(f"{name} must be a spline order from 0 to 5, got {order!r}")
