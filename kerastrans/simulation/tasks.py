"""The simulation tasks: records, metadata and description of each simulated dataset.

Each task gives a `Simulation` (lazy splits of records, metadata, description)
that `Simulation.write` turns into a dataset:

- `ellipses_simulation`: the dival "ellipses" protocol (`kerastrans.tomo.ellipses`);
- `sparseview_simulation`: sinogram -> image pairs (few angles, limited angle);
- `lowdose_simulation`: low-dose FBP image -> clean image pairs in HU;
- `superres_simulation`: blurred, down-sampled image -> image pairs.

The tomography tasks take a `Source` (`kerastrans.simulation.sources`)
and a geometry (`source_geometry`), draw the noise of split ``i`` from
``numpy.random.default_rng([seed, i])`` and store the geometry in the
metadata, so ``kerastrans.data.geometry.geometry_from_dataset(DIR)`` rebuilds it.
`lowdose_records` is the low-dose step alone, on a grid ``oversample`` times
finer against the inverse crime; the demo builds its dataset with it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from kerastrans.simulation.sources import Source

__all__ = [
    "NOTHING_TO_WRITE",
    "SPLITS",
    "Simulation",
    "ellipses_simulation",
    "fine_shape",
    "lowdose_records",
    "lowdose_simulation",
    "source_geometry",
    "sparseview_simulation",
    "superres_simulation",
]

#: Splits drawn from a phantom source, in seed order.
SPLITS = ("train", "validation", "test")
#: The refusal of a simulation without examples.
NOTHING_TO_WRITE = "nothing to write: every split has 0 examples"


@dataclasses.dataclass
class Simulation:
    """A simulated dataset, not yet drawn.

    Attributes:
        splits: ``{split: records}``, lazy (drawn while written); sized
            iterables show a total in progress bars.
        metadata: The dataset's metadata (task, geometry, settings, units).
        description: One line describing the dataset.
    """

    splits: dict[str, Iterable[dict[str, Any]]]
    metadata: dict[str, Any]
    description: str

    def write(self, out_dir: str | os.PathLike, *, overwrite: bool = False, progress: bool = True):
        """Draw the records into the dataset ``out_dir``; return its `DatasetSummary`.

        An existing dataset is reused unless ``overwrite``.

        Raises:
            ValueError: `NOTHING_TO_WRITE` when there are no splits.
        """
        from kerastrans.data.records import write_dataset

        if not self.splits:
            raise ValueError(NOTHING_TO_WRITE)
        return write_dataset(
            out_dir,
            self.splits,
            metadata=self.metadata,
            description=f"kerastrans simulate: {self.description}",
            overwrite=overwrite,
            progress=progress,
        )


def fine_shape(shape: tuple[int, ...], oversample: float) -> tuple[int, ...]:
    """The simulation grid ``oversample`` times finer than ``shape`` (rounded).

    >>> fine_shape((128, 96), 1.5)
    (192, 144)
    """
    return tuple(round(n * oversample) for n in shape)


def source_geometry(
    source: Source,
    *,
    pixel_size: float | None = None,
    beam: str = "parallel",
    num_angles: int | None = None,
    angle_range: tuple[float, float] | None = None,
    det_shape: int | None = None,
    src_radius: float | None = None,
    det_radius: float | None = None,
):
    """The resolved `GeometrySpec` of ``source``'s images.

    Args:
        source: The images; their shape is the image grid.
        pixel_size: mm; the source's pixel spacing (else 1) when `None`.
        beam, num_angles, angle_range, det_shape, src_radius, det_radius: As
            `kerastrans.tomo.geometry.GeometrySpec`; `None` takes its defaults.

    Raises:
        ValueError: For a combination the geometry refuses.
    """
    from kerastrans.tomo.geometry import GeometrySpec

    pixel = pixel_size or source.pixel_size or 1.0
    return GeometrySpec(
        image_shape=source.shape,
        extent=(source.shape[0] * pixel, source.shape[1] * pixel),
        beam=beam,
        num_angles=num_angles,
        angle_range=tuple(angle_range) if angle_range else None,
        det_shape=det_shape,
        src_radius=src_radius,
        det_radius=det_radius,
    ).resolve()


def lowdose_records(
    images_hu: Iterable[tuple[str, np.ndarray]],
    geometry,
    *,
    photons: float,
    random_state: np.random.Generator,
    oversample: float = 1.0,
    **options: Any,
) -> Iterator[dict[str, Any]]:
    """Low-dose (FBP of a Poisson-noisy sinogram) -> clean records in HU.

    Args:
        images_hu: ``(id, image)`` pairs in HU on the geometry's grid.
        geometry: The scan's `GeometrySpec`.
        photons: Incident photons per detector pixel ``I0``.
        random_state: The noise generator, drawn in image order.
        oversample: Project on a grid this many times finer.
        **options: Further arguments of `kerastrans.tomo.simulate.lowdose_examples`
            (``mu_water``, ``filter_type``, ``frequency_scaling``, ``impl``, ``threads``).
    """
    from kerastrans.tomo.simulate import lowdose_examples

    yield from lowdose_examples(
        images_hu,
        geometry,
        photons=photons,
        random_state=random_state,
        simulation_shape=fine_shape(geometry.image_shape, oversample),
        **options,
    )


def ellipses_simulation(
    sizes: Mapping[str, int], *, impl: str | None = None, threads: int | None = None
) -> Simulation:
    """The dival "ellipses" protocol: ``sizes[split]`` examples of each split of `SPLITS`."""
    from kerastrans.tomo.ellipses import EllipsesProtocol

    protocol = EllipsesProtocol()
    splits = {
        split: _Sized(protocol.examples(split, n, impl=impl, threads=threads), n)
        for split in SPLITS
        if (n := sizes.get(split, 0)) > 0
    }
    return Simulation(splits, protocol.metadata(), "dival 'ellipses' protocol")


def sparseview_simulation(
    source: Source,
    geometry,
    *,
    noise: str = "white",
    relative_std: float = 0.025,
    photons: float = 4096.0,
    mu_water: float = 0.02,
    oversample: float = 2.0,
    seed: int = 0,
    impl: str | None = None,
    threads: int | None = None,
) -> Simulation:
    """Noisy sinogram -> image pairs (targets in the source's units).

    Phantoms are projected as ``v * mu_water``, other images (HU) as
    attenuation; sinograms are line integrals (1/mm x mm). Arguments as
    `kerastrans.tomo.simulate.sinogram_examples`.
    """
    from kerastrans.tomo.simulate import hu_to_attenuation, sinogram_examples

    def attenuation(images: np.ndarray) -> np.ndarray:
        if source.phantom:  # phantom values are relative to water
            return images * np.float32(mu_water)
        return hu_to_attenuation(images, mu_water)

    def make(images, geometry, *, random_state, oversample, **options):
        return sinogram_examples(
            images,
            geometry,
            attenuation=attenuation,
            noise=noise,
            relative_std=relative_std,
            photons=photons,
            random_state=random_state,
            simulation_shape=fine_shape(geometry.image_shape, oversample),
            **options,
        )

    settings = {
        "noise": noise,
        "relative_std": relative_std,
        "photons": photons,
        "mu_water": mu_water,
    }
    return _tomo_simulation(
        "sparseview", "reconstruction", source, geometry, make, settings, oversample, seed,
        impl, threads,
    )  # fmt: skip


def lowdose_simulation(
    source: Source,
    geometry,
    *,
    photons: float = 1e4,
    mu_water: float = 0.02,
    filter_type: str = "Hann",
    frequency_scaling: float = 1.0,
    oversample: float = 1.0,
    seed: int = 0,
    impl: str | None = None,
    threads: int | None = None,
) -> Simulation:
    """Low-dose FBP image -> clean image pairs in HU (a source opened with ``hounsfield=True``)."""
    make = functools.partial(
        lowdose_records,
        photons=photons,
        mu_water=mu_water,
        filter_type=filter_type,
        frequency_scaling=frequency_scaling,
    )
    settings = {
        "photons": photons,
        "mu_water": mu_water,
        "filter": filter_type,
        "frequency_scaling": frequency_scaling,
    }
    return _tomo_simulation(
        "lowdose", "denoising", source, geometry, make, settings, oversample, seed, impl, threads
    )


def superres_simulation(
    source: Source, *, factor: int = 2, sigma: float | None = None, upsample: bool = False
) -> Simulation:
    """Low-resolution -> high-resolution pairs, see `kerastrans.tomo.simulate.superres_examples`."""
    from kerastrans.tomo.simulate import superres_examples

    splits = {
        split: _sized(superres_examples(images, factor, sigma=sigma, upsample=upsample), n)
        for split, (images, n) in source.splits.items()
    }
    metadata = {
        "task": "super-resolution",
        "source": source.name,
        "simulation": {"factor": factor, "sigma": sigma, "upsample": upsample},
    }
    return Simulation(splits, metadata, f"super-resolution x{factor} from {source.name}")


# ----------------------------------------------------------------------------------------------
# Helpers.


def _tomo_simulation(
    name: str,
    task: str,
    source: Source,
    geometry,
    make: Callable[..., Iterator[dict[str, Any]]],
    settings: dict[str, Any],
    oversample: float,
    seed: int,
    impl: str | None,
    threads: int | None,
) -> Simulation:
    """A tomography task: one noise generator per split, the geometry in the metadata.

    ``make(images, geometry, random_state=, oversample=, impl=, threads=)``
    yields the records of one split.
    """
    fine = fine_shape(geometry.image_shape, oversample)
    splits = {
        split: _sized(
            make(
                images,
                geometry,
                random_state=np.random.default_rng([seed, index]),
                oversample=oversample,
                impl=impl,
                threads=threads,
            ),
            n,
        )
        for index, (split, (images, n)) in enumerate(source.splits.items())
    }
    metadata = {
        "task": task,
        "source": source.name,
        "geometry": geometry.to_dict(),
        "simulation": {**settings, "simulation_shape": list(fine), "seed": seed},
        "units": {
            "input": "HU" if task == "denoising" else "line integrals of attenuation (1/mm x mm)",
            "target": "phantom value (1 = water)"
            if source.phantom and task != "denoising"
            else "HU",
        },
    }
    return Simulation(splits, metadata, f"{name} from {source.name}")


class _Sized:
    """An iterable with a known length, so progress bars show a total."""

    def __init__(self, iterable: Iterable, length: int) -> None:
        self.iterable, self.length = iterable, length

    def __iter__(self) -> Iterator:
        return iter(self.iterable)

    def __len__(self) -> int:
        return self.length


def _sized(iterable: Iterable, length: int | None) -> Iterable:
    return iterable if length is None else _Sized(iterable, length)
