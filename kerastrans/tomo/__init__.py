"""Tomography with ODL and ASTRA: geometries, operators, simulation, phantoms.

- `GeometrySpec` (``geometry``): parallel / fan-beam geometry as a JSON-able value.
- ``operators``: `ray_transform` (with ``.adjoint``), `fbp`, `apply_batch`.
- ``tf_operators``: `tf_ray_transform` (ASTRA's system matrix as a TF sparse
  tensor, with ``.adjoint``) and `tf_fbp`: TensorFlow ops only, exportable.
- ``layer``: `RayTransformLayer`, the operator as a Keras layer whose gradient
  is the adjoint (TF operator or ODL/ASTRA call, ``backend``).
- ``simulate``: noisy sinograms, low-dose CT, sparse view, limited angle,
  super-resolution pairs; ``phantoms``: random ellipses, Shepp-Logan, FORBILD.
- ``ellipses``: the dival "ellipses" protocol; ``baseline``: the tuned FBP baseline.

Importing this package imports neither ODL, ASTRA nor TensorFlow; the names
below are loaded from their submodule on first use.
"""

from __future__ import annotations

from kerastrans._lazy import lazy_attributes

__all__ = [
    "EllipsesProtocol",
    "GeometrySpec",
    "RayTransformLayer",
    "SinogramSimulator",
    "apply_batch",
    "evaluate_fbp",
    "fbp",
    "fbp_reconstruct",
    "geometry_from_metadata",
    "ray_transform",
    "tf_fbp",
    "tf_ray_transform",
    "tune_fbp",
]

_SUBMODULE = {
    "EllipsesProtocol": "ellipses",
    "GeometrySpec": "geometry",
    "RayTransformLayer": "layer",
    "SinogramSimulator": "simulate",
    "apply_batch": "operators",
    "evaluate_fbp": "baseline",
    "fbp": "operators",
    "fbp_reconstruct": "operators",
    "geometry_from_metadata": "geometry",
    "ray_transform": "operators",
    "tf_fbp": "tf_operators",
    "tf_ray_transform": "tf_operators",
    "tune_fbp": "baseline",
}


__getattr__, __dir__ = lazy_attributes(__name__, _SUBMODULE, __all__)
