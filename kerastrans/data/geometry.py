"""The scan geometry stored with a simulated dataset.

``kerastrans simulate`` writes the `kerastrans.tomo.GeometrySpec` of its
sinograms into the dataset's metadata; `geometry_from_dataset` rebuilds it
from the dataset folder alone. It lives in the data layer, which reads
datasets, so that ``tomo`` (the physics) imports nothing from the pipeline.

>>> geometry_from_dataset("data/ellipses").beam              # doctest: +SKIP
'parallel'
"""

from __future__ import annotations

import os

from kerastrans.data.records import read_metadata
from kerastrans.errors import file_error
from kerastrans.tomo.geometry import GeometrySpec, geometry_from_metadata

__all__ = ["geometry_from_dataset"]


def geometry_from_dataset(dataset_dir: str | os.PathLike) -> GeometrySpec:
    """Rebuild the geometry stored with the dataset at ``dataset_dir``.

    Args:
        dataset_dir: A dataset folder written by ``kerastrans simulate``.

    Returns:
        The `GeometrySpec` the dataset was simulated with.

    Raises:
        kerastrans.errors.DataError: If the folder is not a kerastrans dataset
            or the dataset holds no geometry.
    """
    try:
        return geometry_from_metadata(read_metadata(dataset_dir))
    except ValueError as error:
        raise file_error(dataset_dir, str(error)) from error
