"""Simulated CT data: sinograms with noise, low-dose images, low-resolution images.

The physics, step by step:

1. Images in HU become linear attenuation ``mu = mu_water * (1 + HU / 1000)``
   (1/mm); phantoms are used as they are.
2. Against the inverse crime, the image is resampled (bilinear) to a finer
   grid and projected by a ray transform on that grid, with the same angles
   and detector as the reconstruction geometry (`SinogramSimulator`).
3. Noise: additive white Gaussian noise with a standard deviation relative to
   the mean absolute sinogram value (`add_white_noise`), or low-dose
   transmission noise: ``I0 * exp(-p)`` expected photons, Poisson counts, a
   floor for zero counts and the post-log sinogram (`transmission_noise`).
4. Sparse view and limited angle are geometries with fewer angles or a shorter
   angular range (`GeometrySpec.replace`).

Dataset generators (`sinogram_examples`, `lowdose_examples`,
`superres_examples`) yield ``{"input", "target", "id"}`` records of float32
``H x W x 1`` arrays, the record format of ``kerastrans.data.records``.
Randomness comes from one generator per call, used in image order, so the
output is the same for a given seed whatever the number of threads.

Steps 1 and 3 and the image-domain degradations work image by image and live
in `kerastrans.tomo.physics`; their names are importable from here too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from kerastrans.errors import file_error
from kerastrans.tomo.geometry import GeometrySpec
from kerastrans.tomo.operators import apply_batch, fbp, ray_transform
from kerastrans.tomo.physics import (
    MU_WATER,
    RandomState,
    add_white_noise,
    attenuation_to_hu,
    check_order,
    degrade_resolution,
    hu_to_attenuation,
    photon_counts,
    post_log,
    resize_image,
    transmission_noise,
)

__all__ = [
    "MU_WATER",
    "NOISE_MODELS",
    "SinogramSimulator",
    "add_white_noise",
    "attenuation_to_hu",
    "degrade_resolution",
    "hu_to_attenuation",
    "lowdose_examples",
    "photon_counts",
    "post_log",
    "resize_image",
    "sinogram_examples",
    "superres_examples",
    "transmission_noise",
]

#: Noise models of `sinogram_examples`.
NOISE_MODELS = ("none", "white", "poisson")
#: Images projected together (in threads) before the noise is drawn in order.
_CHUNK = 16


# ------------------------------------------------------------- projection


class SinogramSimulator:
    """Noise-free sinograms of a geometry, optionally simulated on a finer grid.

    Args:
        geometry: The reconstruction geometry; the sinograms have its angles
            and detector.
        simulation_shape: Finer image grid to project from (same physical
            extent), against the inverse crime; ``None`` projects on the
            reconstruction grid itself.
        impl: ASTRA back-end, ``None`` picks CUDA where available.
        threads: Worker threads, see `kerastrans.tomo.operators.apply_batch`.

    >>> from kerastrans.tomo.geometry import GeometrySpec
    >>> project = SinogramSimulator(GeometrySpec((32, 32), num_angles=6), (64, 64))
    >>> project(np.ones((2, 32, 32), "float32")).shape
    (2, 6, 47)
    """

    def __init__(
        self,
        geometry: GeometrySpec,
        simulation_shape: tuple[int, int] | None = None,
        *,
        impl: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.geometry = geometry
        shape = geometry.image_shape if simulation_shape is None else tuple(simulation_shape)
        self.simulation_shape = shape
        self.threads = threads
        self.operator = ray_transform(geometry, impl=impl, shape=shape)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Project images ``(..., rows, columns)`` on the reconstruction grid.

        Returns:
            Float32 line integrals ``(..., num_angles, det_shape)`` (image
            units times mm).
        """
        images = np.asarray(images, dtype=np.float32)
        expected = self.geometry.image_shape
        if images.shape[-2:] != expected:
            raise ValueError(f"images must end with shape {expected}, got {images.shape}")
        if self.simulation_shape != expected:
            flat = images.reshape((-1, *expected))
            fine = np.stack([resize_image(image, self.simulation_shape) for image in flat])
            images = fine.reshape((*images.shape[:-2], *self.simulation_shape))
        return apply_batch(self.operator, images, threads=self.threads)


# ------------------------------------------------------- dataset records
def sinogram_examples(
    images: Iterable[tuple[str, np.ndarray]],
    geometry: GeometrySpec,
    *,
    attenuation: Callable[[np.ndarray], np.ndarray] | None = None,
    noise: str = "white",
    relative_std: float = 0.025,
    photons: float = 4096.0,
    min_counts: float = 0.1,
    random_state: RandomState | int | None = None,
    simulation_shape: tuple[int, int] | None = None,
    impl: str | None = None,
    threads: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield (noisy sinogram, image) records for reconstruction.

    Args:
        images: ``(id, image)`` pairs, images ``(rows, columns)`` on the
            geometry's grid; they are the targets, as given.
        geometry: Scan geometry (sparse view: few angles; limited angle: a
            short ``angle_range``).
        attenuation: Maps a stack of images to what is projected, e.g.
            `hu_to_attenuation` for HU images (then the sinograms are line
            integrals of 1/mm over mm, as ``"poisson"`` needs). Default:
            the images themselves (the dival "ellipses" convention).
        noise: ``"none"``, ``"white"`` (relative Gaussian) or ``"poisson"``
            (transmission noise with ``photons``).
        relative_std: White-noise level relative to ``mean(|sinogram|)``.
        photons: Incident photons per detector pixel for ``"poisson"``.
        min_counts: Floor for zero counts for ``"poisson"``.
        random_state: Generator or seed; draws are made in image order.
        simulation_shape: Finer grid against the inverse crime.
        impl: ASTRA back-end.
        threads: Worker threads for the projections.

    Yields:
        ``{"input": sinogram (angles, detector, 1), "target": image (rows,
        columns, 1), "id": id}``, float32.
    """
    if noise not in NOISE_MODELS:
        raise ValueError(f"noise must be one of {NOISE_MODELS}, got {noise!r}")
    random_state = _random_state(random_state)
    simulator = SinogramSimulator(geometry, simulation_shape, impl=impl, threads=threads)
    for ids, batch in _chunks(images, geometry.image_shape):
        projected = batch if attenuation is None else attenuation(batch)
        for key, image, clean in zip(ids, batch, simulator(projected), strict=True):
            if noise == "white":
                sinogram = add_white_noise(clean, relative_std, random_state)
            elif noise == "poisson":
                sinogram = transmission_noise(clean, photons, random_state, min_counts=min_counts)
            else:
                sinogram = clean
            yield _record(sinogram, image, key)


def lowdose_examples(
    images_hu: Iterable[tuple[str, np.ndarray]],
    geometry: GeometrySpec,
    *,
    photons: float = 4096.0,
    mu_water: float = MU_WATER,
    min_counts: float = 0.1,
    filter_type: str = "Hann",
    frequency_scaling: float = 1.0,
    random_state: RandomState | int | None = None,
    simulation_shape: tuple[int, int] | None = None,
    impl: str | None = None,
    threads: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield (low-dose FBP image, clean image) records in HU for denoising.

    Each image is converted to attenuation, projected, given transmission
    noise with ``photons`` incident photons per pixel and reconstructed by
    FBP; the input is that reconstruction in HU, the target the clean image.
    The geometry's pixel size (mm) sets the path lengths, hence the dose.

    Args:
        images_hu: ``(id, image)`` pairs, images in HU on the geometry's grid.
        geometry: Scan geometry (its extent in mm matters).
        photons: Incident photons per detector pixel ``I0``.
        mu_water: Attenuation of water in 1/mm.
        min_counts: Floor for zero counts.
        filter_type: FBP filter.
        frequency_scaling: FBP cut-off.
        random_state: Generator or seed.
        simulation_shape: Finer grid against the inverse crime.
        impl: ASTRA back-end.
        threads: Worker threads.

    Yields:
        ``{"input": noisy HU (rows, columns, 1), "target": HU (rows,
        columns, 1), "id": id}``, float32.
    """
    random_state = _random_state(random_state)
    simulator = SinogramSimulator(geometry, simulation_shape, impl=impl, threads=threads)
    reconstruct = fbp(
        ray_transform(geometry, impl=impl),
        filter_type=filter_type,
        frequency_scaling=frequency_scaling,
    )
    for ids, batch in _chunks(images_hu, geometry.image_shape):
        clean = simulator(hu_to_attenuation(batch, mu_water))
        noisy = np.stack(
            [transmission_noise(s, photons, random_state, min_counts=min_counts) for s in clean]
        )
        recon = attenuation_to_hu(apply_batch(reconstruct, noisy, threads=threads), mu_water)
        for key, image, low_dose in zip(ids, batch, recon, strict=True):
            yield _record(low_dose, image, key)


def superres_examples(
    images: Iterable[tuple[str, np.ndarray]],
    factor: int,
    *,
    sigma: float | None = None,
    upsample: bool = False,
    interpolation: int = 1,
) -> Iterator[dict[str, Any]]:
    """Yield (low-resolution, image) records for super-resolution.

    Args:
        images: ``(id, image)`` pairs, any units (kept as they are).
        factor: Down-sampling factor, 2 or 4.
        sigma: Gaussian blur, see `degrade_resolution`.
        upsample: Resample the low-resolution input back to the target grid,
            for networks whose input and output sizes match; the input is
            then also the interpolation baseline to beat.
        interpolation: Spline order of that resampling (`resize_image`):
            1 bilinear (default), 3 bicubic.

    Yields:
        ``{"input": low-res (rows/factor, columns/factor, 1) or (rows,
        columns, 1), "target": (rows, columns, 1), "id": id}``, float32.

    Raises:
        ValueError: If ``interpolation`` is not a spline order from 0 to 5.
    """
    check_order("interpolation", interpolation)
    for key, image in images:
        image = np.asarray(image, dtype=np.float32)
        low = degrade_resolution(image, factor, sigma=sigma)
        if upsample:
            low = resize_image(low, image.shape, order=interpolation)
        yield _record(low, image, key)


# --------------------------------------------------------------- helpers


def _random_state(random_state: RandomState | int | None) -> RandomState:
    if isinstance(random_state, np.random.RandomState | np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def _chunks(
    images: Iterable[tuple[str, np.ndarray]], shape: tuple[int, int]
) -> Iterator[tuple[list[str], np.ndarray]]:
    """Group ``(id, image)`` pairs into stacks, checking each image's shape."""
    iterator = iter(images)
    while chunk := list(itertools.islice(iterator, _CHUNK)):
        for key, image in chunk:
            if np.shape(image) != shape:
                problem = f"image shape {np.shape(image)} differs from the geometry's {shape}"
                raise file_error(key, problem)
        yield [key for key, _ in chunk], np.stack([image for _, image in chunk]).astype(np.float32)


def _record(inputs: np.ndarray, target: np.ndarray, key: str) -> dict[str, Any]:
    return {
        "input": np.asarray(inputs, dtype=np.float32)[..., None],
        "target": np.asarray(target, dtype=np.float32)[..., None],
        "id": str(key),
    }
