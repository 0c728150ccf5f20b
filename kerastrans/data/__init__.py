"""Datasets and the tf.data pipeline.

- `write_dataset`, `load_builder`, `read_metadata`, `read_summary`: TFDS-format
  datasets of float32 slices in physical units (`kerastrans.data.records`);
- `make_dataset`: batches windowed to [-1, 1], augmented, 2.5D, padded
  (`kerastrans.data.pipeline`);
- `window`, `unwindow`: physical units <-> [-1, 1] as TensorFlow ops;
- `kerastrans.data.recipes`: the project's reproducible datasets.
"""

from kerastrans.data.pipeline import crop_to_size, make_dataset, pad_to_multiple
from kerastrans.data.records import (
    DatasetSummary,
    load_builder,
    read_metadata,
    read_summary,
    write_dataset,
)
from kerastrans.data.window import unwindow, window

__all__ = [
    "DatasetSummary",
    "crop_to_size",
    "load_builder",
    "make_dataset",
    "pad_to_multiple",
    "read_metadata",
    "read_summary",
    "unwindow",
    "window",
    "write_dataset",
]
