"""Scan geometries: a small, serialisable spec that builds ODL spaces and geometries.

A `GeometrySpec` is a plain frozen value (image grid, angles, detector, beam
type) that round-trips through JSON, so a dataset can store the geometry it was
simulated with and a model or an FBP baseline can be rebuilt from the dataset
alone. ODL objects are built from it on demand; ODL is imported only then.

Conventions follow ODL: the image is centred on the rotation axis, the first
array axis is ODL's first coordinate axis, angles run from ``angle_range[0]``
to ``angle_range[1]`` (given here in degrees, converted to radians for ODL), and
the detector is a uniform 1-D partition centred on the principal ray.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any

__all__ = [
    "BEAMS",
    "GeometrySpec",
    "geometry_from_metadata",
    "import_odl",
]

#: Beam types a `GeometrySpec` can describe.
BEAMS = ("parallel", "fan")

#: Key under which datasets store the geometry in their metadata.
METADATA_KEY = "geometry"


@dataclasses.dataclass(frozen=True)
class GeometrySpec:
    """A 2-D tomography geometry: reconstruction grid, angles and detector.

    Fields left as ``None`` take ODL's defaults, which sample the data fully
    according to the Nyquist criterion (see Notes of
    `odl.applications.tomo.parallel_beam_geometry` and ``cone_beam_geometry``);
    `resolve` makes every field explicit, which is what datasets store.

    Args:
        image_shape: Reconstruction grid ``(rows, columns)`` in pixels.
        extent: Physical size of the grid ``(rows, columns)`` in mm, centred on
            the rotation axis. Defaults to ``image_shape`` (1 mm pixels), as
            the dival "ellipses" protocol uses.
        beam: ``"parallel"`` or ``"fan"`` (2-D fan beam, flat detector).
        num_angles: Number of projection angles. ``None``: Nyquist default.
        angle_range: ``(start, stop)`` of the angular range in degrees; a
            shorter range than the default gives limited-angle data.
            ``None``: ``(0, 180)`` for parallel beam, ``(0, 360)`` for fan beam.
        det_shape: Number of detector pixels. ``None``: Nyquist default.
        det_width: Detector length in mm. ``None``: just covers the image
            (``2 * rho`` for parallel beam, magnified for fan beam).
        src_radius: Fan beam only: source to rotation-axis distance in mm.
        det_radius: Fan beam only: rotation-axis to detector distance in mm.

    Raises:
        ValueError: If a field breaks its rule (the message names the field,
            the rule and the value received).

    >>> spec = GeometrySpec(image_shape=(128, 128), num_angles=30)
    >>> GeometrySpec.from_dict(spec.to_dict()) == spec
    True
    >>> spec.pixel_size
    (1.0, 1.0)
    """

    image_shape: tuple[int, int]
    extent: tuple[float, float] | None = None
    beam: str = "parallel"
    num_angles: int | None = None
    angle_range: tuple[float, float] | None = None
    det_shape: int | None = None
    det_width: float | None = None
    src_radius: float | None = None
    det_radius: float | None = None

    def __post_init__(self) -> None:
        shape = _pair(self.image_shape, "image_shape", int)
        if min(shape) < 1:
            raise ValueError(f"image_shape needs positive sizes, got {self.image_shape}")
        object.__setattr__(self, "image_shape", shape)
        if self.extent is not None:
            extent = _pair(self.extent, "extent", float)
            if min(extent) <= 0:
                raise ValueError(f"extent needs positive sizes in mm, got {self.extent}")
            object.__setattr__(self, "extent", extent)
        if self.beam not in BEAMS:
            raise ValueError(f"beam must be one of {BEAMS}, got {self.beam!r}")
        object.__setattr__(self, "num_angles", _positive_int(self.num_angles, "num_angles"))
        object.__setattr__(self, "det_shape", _positive_int(self.det_shape, "det_shape"))
        if self.det_width is not None:
            object.__setattr__(self, "det_width", _positive_float(self.det_width, "det_width"))
        if self.angle_range is not None:
            start, stop = _pair(self.angle_range, "angle_range", float)
            if not start < stop <= start + 360.0:
                raise ValueError(
                    f"angle_range needs start < stop <= start + 360 degrees, got {self.angle_range}"
                )
            object.__setattr__(self, "angle_range", (start, stop))
        self._check_radii()

    def _check_radii(self) -> None:
        radii = {"src_radius": self.src_radius, "det_radius": self.det_radius}
        if self.beam == "parallel":
            given = [name for name, value in radii.items() if value is not None]
            if given:
                raise ValueError(
                    f"{', '.join(given)} only apply to beam='fan', got beam='parallel'"
                )
            return
        for name, value in radii.items():
            if value is None:
                raise ValueError(f"beam='fan' needs {name} in mm, got None")
        object.__setattr__(self, "src_radius", _positive_float(self.src_radius, "src_radius"))
        if not isinstance(self.det_radius, numbers.Real) or self.det_radius < 0:
            raise ValueError(f"det_radius must be a number >= 0 mm, got {self.det_radius!r}")
        object.__setattr__(self, "det_radius", float(self.det_radius))
        rho = 0.5 * math.hypot(*self.physical_extent)
        if self.src_radius <= rho:
            raise ValueError(
                f"src_radius must exceed the image half-diagonal {rho:.4g} mm so the fan "
                f"covers the image, got {self.src_radius}"
            )

    # ------------------------------------------------------------------ views
    @property
    def physical_extent(self) -> tuple[float, float]:
        """Size of the reconstruction grid ``(rows, columns)`` in mm."""
        if self.extent is None:
            return (float(self.image_shape[0]), float(self.image_shape[1]))
        return self.extent

    @property
    def pixel_size(self) -> tuple[float, float]:
        """Pixel size ``(rows, columns)`` in mm."""
        extent = self.physical_extent
        return (extent[0] / self.image_shape[0], extent[1] / self.image_shape[1])

    @property
    def default_angle_range(self) -> tuple[float, float]:
        """``angle_range`` or its default for the beam type, in degrees."""
        if self.angle_range is not None:
            return self.angle_range
        return (0.0, 180.0) if self.beam == "parallel" else (0.0, 360.0)

    @property
    def sinogram_shape(self) -> tuple[int, int]:
        """Shape ``(num_angles, det_shape)`` of a sinogram (builds the geometry if needed)."""
        if self.num_angles is not None and self.det_shape is not None:
            return (self.num_angles, self.det_shape)
        return tuple(int(n) for n in self.odl_geometry().partition.shape)

    # ----------------------------------------------------------- serialising
    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict; `from_dict` inverts it exactly."""
        return {
            field.name: (list(value) if isinstance(value, tuple) else value)
            for field in dataclasses.fields(self)
            for value in [getattr(self, field.name)]
        }

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> GeometrySpec:
        """Build a spec from `to_dict` output (lists become tuples).

        Raises:
            ValueError: On an unknown key or a field breaking its rule.
        """
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ValueError(f"geometry has unknown keys {unknown}; known keys are {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})

    def replace(self, **changes: Any) -> GeometrySpec:
        """Return a copy with ``changes`` applied (e.g. fewer angles for sparse view)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------ ODL objects
    def odl_space(self, shape: tuple[int, int] | None = None):
        """Return the ODL reconstruction space (float32) of this grid.

        Args:
            shape: Another grid shape over the same physical extent, e.g. a
                finer one for simulation. Defaults to ``image_shape``.

        Returns:
            An ``odl.DiscretizedSpace`` on ``[-extent/2, extent/2]`` (mm).
        """
        half = [e / 2 for e in self.physical_extent]
        return import_odl().uniform_discr(
            [-half[0], -half[1]], half, shape or self.image_shape, dtype="float32"
        )

    def odl_geometry(self):
        """Return the ODL geometry (`Parallel2dGeometry` or `FanBeamGeometry`)."""
        tomo = import_odl().applications.tomo
        space = self.odl_space()
        if self.beam == "parallel":
            default = tomo.parallel_beam_geometry(space, num_angles=self.num_angles)
        else:
            default = tomo.cone_beam_geometry(
                space, self.src_radius, self.det_radius, num_angles=self.num_angles
            )
        angle_partition = default.motion_partition
        if self.angle_range is not None or self.beam == "fan":
            start, stop = (math.radians(a) for a in self.default_angle_range)
            angle_partition = _uniform_partition(start, stop, default.motion_partition.size)
        det_partition = default.det_partition
        if self.det_shape is not None or self.det_width is not None:
            width = self.det_width or float(det_partition.extent[0])
            det_partition = _uniform_partition(
                -width / 2, width / 2, self.det_shape or det_partition.size
            )
        if self.beam == "parallel":
            return tomo.Parallel2dGeometry(angle_partition, det_partition)
        return tomo.FanBeamGeometry(
            angle_partition, det_partition, self.src_radius, self.det_radius
        )

    def resolve(self) -> GeometrySpec:
        """Return the same geometry with every default made explicit.

        Datasets store the resolved spec so that a later ODL version with other
        defaults still rebuilds the geometry they were simulated with.
        """
        geometry = self.odl_geometry()
        return self.replace(
            extent=self.physical_extent,
            num_angles=int(geometry.motion_partition.size),
            angle_range=self.default_angle_range,
            det_shape=int(geometry.det_partition.size),
            det_width=float(geometry.det_partition.extent[0]),
        )

    def refine(self, shape: tuple[int, int]) -> GeometrySpec:
        """Return this geometry on another image grid with the same angles and detector.

        Used against the inverse crime: data are simulated on a finer grid
        (e.g. 400 x 400 for a 128 x 128 reconstruction) whose ray transform
        differs from the one used to reconstruct.

        Args:
            shape: The new grid ``(rows, columns)``; the extent (mm) is kept.
        """
        return self.resolve().replace(image_shape=tuple(shape))


def geometry_from_metadata(metadata: Mapping[str, Any]) -> GeometrySpec:
    """Rebuild the geometry stored in a dataset's metadata.

    Args:
        metadata: The dataset metadata (``kerastrans.data.records.read_metadata``).

    Returns:
        The `GeometrySpec` the dataset was simulated with.

    Raises:
        ValueError: If the metadata holds no geometry.
    """
    if METADATA_KEY not in metadata:
        raise ValueError(
            f"metadata has no '{METADATA_KEY}' entry (keys: {sorted(metadata)}); "
            "was the dataset written by 'kerastrans simulate'?"
        )
    return GeometrySpec.from_dict(metadata[METADATA_KEY])


def import_odl():
    """Import and return ODL, undoing its change to NumPy's global print options.

    ``import odl`` calls ``np.set_printoptions(legacy="1.13")``, which would
    change how every NumPy array prints in the importing program.
    """
    import numpy as np

    options = np.get_printoptions()
    import odl

    np.set_printoptions(**options)
    return odl


def _uniform_partition(start: float, stop: float, size: int):
    return import_odl().uniform_partition(start, stop, size)


def _pair(value: Any, name: str, kind: type) -> tuple:
    """Check that ``value`` is a pair of numbers; return it as a tuple of ``kind``."""
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a pair of numbers, got {value!r}") from None
    if len(items) != 2 or not all(_is_number(v) for v in items):
        raise ValueError(f"{name} must be a pair of numbers, got {value!r}")
    if kind is int and any(int(v) != v for v in items):
        raise ValueError(f"{name} must hold integers, got {value!r}")
    return tuple(kind(v) for v in items)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _positive_int(value: Any, name: str) -> int | None:
    """Return ``value`` as an int if it is a positive integer (or None); else raise."""
    if value is None:
        return None
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return int(value)


def _positive_float(value: Any, name: str) -> float:
    """Return ``value`` as a float if it is a positive number; else raise."""
    if not _is_number(value) or not value > 0:
        raise ValueError(f"{name} must be a positive number in mm, got {value!r}")
    return float(value)
