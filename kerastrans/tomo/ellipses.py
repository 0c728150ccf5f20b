"""The "ellipses" protocol of the dival library, reproduced on ODL 1.0.

dival's ``get_standard_dataset('ellipses', fixed_seeds=True)`` (Leuschner et
al.; used by Baguer, Leuschner & Schmidt, "Computed tomography reconstruction
using deep image prior and learned reconstruction methods", Inverse Problems
36, 2020) pairs 128 x 128 random-ellipse phantoms in ``[0, 1]`` with noisy
parallel-beam sinograms:

* geometry: ``parallel_beam_geometry`` of the 128 x 128 space on
  ``[-64, 64]^2`` with 30 angles over 180 degrees and ODL's default detector
  (183 pixels);
* simulation: the phantom is resized bilinearly to 400 x 400 and projected by
  a ray transform on that finer grid with the same angles and detector;
* noise: white Gaussian, std ``0.025 * mean(|Ax|)`` per sinogram;
* seeds: phantoms ``RandomState`` 42 / 2 / 1 and noise ``RandomState`` 1 / 2 / 3
  for train / validation / test, so the first ``n`` samples of a split do
  not depend on how many are built;
* published sizes: 32,000 / 3,200 / 3,200.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from kerastrans.tomo.geometry import GeometrySpec
from kerastrans.tomo.phantoms import random_ellipses
from kerastrans.tomo.simulate import sinogram_examples

__all__ = ["SPLITS", "EllipsesProtocol"]

#: Splits of the protocol, in build order.
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class EllipsesProtocol:
    """Parameters of the dival "ellipses" dataset; the defaults are dival's.

    Args:
        image_size: Phantom and reconstruction size in pixels (1 mm each).
        num_angles: Projection angles over 180 degrees.
        simulation_size: Size of the finer grid the data are simulated on.
        relative_std: Noise std relative to the mean absolute sinogram value.
        phantom_seeds: ``RandomState`` seed of each split's phantoms.
        noise_seeds: ``RandomState`` seed of each split's noise.
        split_sizes: Published number of samples per split.

    >>> EllipsesProtocol().geometry().sinogram_shape
    (30, 183)
    """

    image_size: int = 128
    num_angles: int = 30
    simulation_size: int = 400
    relative_std: float = 0.025
    phantom_seeds: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"train": 42, "validation": 2, "test": 1}
    )
    noise_seeds: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"train": 1, "validation": 2, "test": 3}
    )
    split_sizes: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"train": 32000, "validation": 3200, "test": 3200}
    )

    def geometry(self) -> GeometrySpec:
        """The reconstruction geometry (resolved: every default explicit)."""
        size = self.image_size
        return GeometrySpec((size, size), num_angles=self.num_angles).resolve()

    def metadata(self) -> dict[str, Any]:
        """Dataset metadata: the geometry and how the data were simulated."""
        return {
            "task": "reconstruction",
            "protocol": "dival-ellipses",
            "geometry": self.geometry().to_dict(),
            "simulation": {
                "simulation_shape": [self.simulation_size, self.simulation_size],
                "noise": "white",
                "relative_std": self.relative_std,
                "phantom_seeds": dict(self.phantom_seeds),
                "noise_seeds": dict(self.noise_seeds),
            },
            "units": {"input": "line integrals (phantom value x mm)", "target": "phantom value"},
        }

    def examples(
        self,
        split: str,
        num_examples: int | None = None,
        *,
        impl: str | None = None,
        threads: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield the first ``num_examples`` records of ``split``.

        Args:
            split: ``"train"``, ``"validation"`` or ``"test"``.
            num_examples: How many; default the published split size.
            impl: ASTRA back-end.
            threads: Worker threads for the projections.

        Yields:
            ``{"input": sinogram (30, 183, 1), "target": phantom (128, 128, 1),
            "id": "<split>-<index>"}``, float32.

        Raises:
            ValueError: On an unknown split or a negative count.
        """
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        count = self.split_sizes[split] if num_examples is None else num_examples
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"num_examples must be a non-negative integer, got {num_examples!r}")
        shape = (self.image_size, self.image_size)
        phantoms = random_ellipses(count, self.phantom_seeds[split], shape=shape)
        yield from sinogram_examples(
            ((f"{split}-{index:05d}", image) for index, image in enumerate(phantoms)),
            self.geometry(),
            noise="white",
            relative_std=self.relative_std,
            random_state=np.random.RandomState(self.noise_seeds[split]),
            simulation_shape=(self.simulation_size, self.simulation_size),
            impl=impl,
            threads=threads,
        )
