"""The kerastrans demo, run by ``make demo``: ``python -m kerastrans.demo --out demo_output``.

A readable sequence of steps on data that ships with the installed packages
(nothing is downloaded):

1. build the real-CT dataset from the CT slices of pydicom/pydicom-data;
2. build the synthetic shapes dataset (rectangles -> ellipses);
3. stream a training batch of each through the tf.data pipeline (window to
   [-1, 1], augmentation) and check that the window inverts back to HU.

Re-running reuses the datasets already built (``--rebuild`` replaces them).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m kerastrans.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out", type=Path, default=Path("demo_output"), help="output folder (default: demo_output)"
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild existing datasets")
    args = parser.parse_args(argv)
    _quiet_libraries()

    from kerastrans.data.recipes import build_pydicom_ct, build_shapes

    datasets = args.out / "datasets"
    options = {"overwrite": args.rebuild, "progress": False}

    _step(1, "real CT slices of pydicom/pydicom-data -> noisy input / clean target (HU)")
    ct = build_pydicom_ct(datasets / "pydicom_ct", **options)
    _show(ct)

    _step(2, "synthetic shapes: rectangles (input) -> ellipses (target), HU-like units")
    shapes = build_shapes(datasets / "shapes", **options)
    _show(shapes)

    _step(3, "tf.data pipeline: window [-1000, 1000] HU -> [-1, 1], crop, flips, rotation")
    for summary in (ct, shapes):
        _stream(summary.path)
    print(f"\ndemo finished: datasets in {datasets}")
    return 0


def _quiet_libraries() -> None:
    """Keep the demo's output readable: no deprecation notices from TFDS internals."""
    logging.getLogger("absl").setLevel(logging.ERROR)


def _step(number: int, text: str) -> None:
    print(f"\n== step {number}: {text}")


def _show(summary) -> None:
    state = "reused" if summary.reused else "built"
    print(f"{summary.path} ({state}, {summary.kind}, TFDS format)")
    print(summary.format(units="HU"))


def _stream(dataset_dir: Path) -> None:
    """Read one augmented training batch and report its range, in [-1, 1] and in HU."""
    import numpy as np

    from kerastrans.config import AugmentConfig, DataConfig, Window
    from kerastrans.data import make_dataset, unwindow

    config = DataConfig(
        input_window=Window(-1000, 2000),
        target_window=Window(-1000, 2000),
        augment=AugmentConfig(flip_left_right=True, rotation=10.0, scale=0.1),
        batch_size=4,
        crop=(96, 96),
        seed=0,
    )
    inputs, targets = next(iter(make_dataset(dataset_dir, "train", config, training=True)))
    hu = unwindow(targets, config.target_window).numpy()
    print(
        f"{dataset_dir.name}: batch input {tuple(inputs.shape)} in "
        f"[{np.min(inputs):.3f}, {np.max(inputs):.3f}], target back in HU "
        f"[{hu.min():.1f}, {hu.max():.1f}]"
    )


if __name__ == "__main__":
    sys.exit(main())
