"""Datasets and the tf.data pipeline.

- `write_dataset`, `load_builder`, `read_metadata`, `read_summary`: TFDS-format
  datasets of float32 slices in physical units (`kerastrans.data.records`);
- `make_dataset`: batches windowed to [-1, 1], augmented, 2.5D, padded
  (`kerastrans.data.pipeline`);
- `window`, `unwindow`: physical units <-> [-1, 1] as TensorFlow ops
  (``window``); `pad_to_multiple`, `crop_to_size`: sizes a network takes
  (``padding``);
- `geometry_from_dataset`: the scan geometry of a simulated dataset (``geometry``);
- `kerastrans.data.recipes`: the project's reproducible datasets.

Importing this package (or its ``window`` and ``padding`` modules, which
`kerastrans.translate` and exported models use) imports neither
tensorflow_datasets nor ODL: the names below are loaded from their submodule
on first use.
"""

from __future__ import annotations

from kerastrans._lazy import lazy_attributes

__all__ = [
    "DatasetSummary",
    "crop_to_size",
    "geometry_from_dataset",
    "load_builder",
    "make_dataset",
    "pad_to_multiple",
    "read_metadata",
    "read_summary",
    "unwindow",
    "window",
    "write_dataset",
]

_SUBMODULE = {
    "DatasetSummary": "records",
    "crop_to_size": "padding",
    "geometry_from_dataset": "geometry",
    "load_builder": "records",
    "make_dataset": "pipeline",
    "pad_to_multiple": "padding",
    "read_metadata": "records",
    "read_summary": "records",
    "unwindow": "window",
    "window": "window",
    "write_dataset": "records",
}


__getattr__, __dir__ = lazy_attributes(__name__, _SUBMODULE, __all__)
