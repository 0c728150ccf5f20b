"""Throughput of the tf.data pipeline: 256 x 256 slices per second, without and with augmentation.

Builds (or reuses) the synthetic shapes dataset at 256 x 256 (float32 HU,
TFDS format) and times whole training epochs of `kerastrans.data.make_dataset`
at batch size 1 on this machine (2 cores, no GPU):

- ``read``: read, shuffle, window to [-1, 1], batch, prefetch;
- ``read+augment``: the same plus flips, rotation, zoom and shift (one bilinear
  resampling), a random 224 x 224 crop and Gaussian noise on the input.

The figure reported is the median over epochs after a warm-up epoch (which
traces the graph and fills TFDS's in-memory cache of small datasets); the
first epoch's rate is reported too. The goal is at least 10 x what a pix2pix
train step consumes: a 256 x 256 batch-1 step takes about 0.5 s here, i.e.
about 2 slices/s, so the pipeline must deliver >= 20 slices/s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, median_seconds, print_table, save_figure, write_results

NAME = "pipeline"
SIZE = 256
#: Slices per second a pix2pix 256 x 256 batch-1 train step consumes here (0.5 s per step).
PIX2PIX_SLICES_PER_S = 2.0
#: The pipeline should deliver at least this multiple of what training consumes.
GOAL_FACTOR = 10.0


def configs():
    """The two pipelines timed: plain reading, and reading with every augmentation."""
    from kerastrans.config import AugmentConfig, DataConfig, Window

    ct = Window()  # the CT range -1024..3071 HU
    plain = DataConfig(input_window=ct, target_window=ct, batch_size=1, seed=0)
    augmented = DataConfig(
        input_window=ct,
        target_window=ct,
        batch_size=1,
        seed=0,
        crop=(224, 224),
        augment=AugmentConfig(
            flip_left_right=True,
            flip_up_down=True,
            rotation=15.0,
            scale=0.1,
            translation=0.05,
            noise_std=10.0,
        ),
    )
    return {"read": plain, "read+augment": augmented}


def measure(dataset_dir: Path, n_slices: int, repeats: int) -> list[dict]:
    """Time epochs of each pipeline; return one row per pipeline."""
    from kerastrans.data import make_dataset

    rows = []
    for method, config in configs().items():
        dataset = make_dataset(dataset_dir, "train", config, training=True)

        def epoch(dataset=dataset) -> None:
            for _ in dataset:
                pass

        start = time.perf_counter()
        epoch()  # traces the graph, fills the cache
        first = time.perf_counter() - start
        seconds = median_seconds(epoch, repeats=repeats, warmup=0)
        rate = n_slices / seconds
        rows.append(
            {
                "method": method,
                "slices_per_s": round(rate, 1),
                "first_epoch_slices_per_s": round(n_slices / first, 1),
                "x_pix2pix_need": round(rate / PIX2PIX_SLICES_PER_S, 1),
                "n_slices": n_slices,
                "size": SIZE,
            }
        )
    return rows


def plot(rows: list[dict], path: Path) -> None:
    """Bar chart of slices/s with the pix2pix consumption and the 10 x goal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.5))
    bars = axis.bar([row["method"] for row in rows], [row["slices_per_s"] for row in rows])
    axis.bar_label(bars, fmt="%.0f")
    goal = GOAL_FACTOR * PIX2PIX_SLICES_PER_S
    axis.axhline(goal, color="C3", linestyle="--", label=f"goal: {goal:.0f} slices/s (10 x)")
    axis.axhline(
        PIX2PIX_SLICES_PER_S,
        color="C2",
        linestyle=":",
        label=f"pix2pix step: {PIX2PIX_SLICES_PER_S:.0f} slices/s",
    )
    axis.set_yscale("log")
    axis.set_ylabel(f"slices/s ({SIZE} x {SIZE}, batch 1, log scale)")
    axis.set_title("tf.data pipeline throughput, 2-core CPU")
    axis.legend(fontsize=8)
    save_figure(figure, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-slices", type=int, default=256, help="slices per epoch (256)")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs (5)")
    parser.add_argument("--quick", action="store_true", help="64 slices, 2 timed epochs")
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="dataset folder to build or reuse (default: a temp folder)",
    )
    args = parser.parse_args(argv)
    n_slices, repeats = (64, 2) if args.quick else (args.n_slices, args.repeats)
    data = args.data or Path(tempfile.gettempdir()) / "kerastrans-benchmarks" / (
        f"shapes{SIZE}-{n_slices}"
    )

    from kerastrans.data.recipes import build_shapes

    summary = build_shapes(data, size=SIZE, n_train=n_slices, n_test=1, progress=False)
    print(f"dataset: {summary.path} ({'reused' if summary.reused else 'built'})")
    rows = measure(data, n_slices, repeats)
    print_table(rows)
    goal = GOAL_FACTOR * PIX2PIX_SLICES_PER_S
    for row in rows:
        verdict = "meets" if row["slices_per_s"] >= goal else "MISSES"
        print(
            f"{row['method']}: {row['slices_per_s']:.0f} slices/s = {row['x_pix2pix_need']:.0f} x "
            f"what a pix2pix {SIZE} x {SIZE} batch-1 step consumes (~0.5 s/step = "
            f"{PIX2PIX_SLICES_PER_S:.0f} slices/s): {verdict} the >= {goal:.0f} slices/s goal"
        )
    plot(rows, RESULTS / f"{NAME}.png")
    command = "python benchmarks/pipeline.py" + (
        " --quick" if args.quick else f" --n-slices {n_slices} --repeats {repeats}"
    )
    write_results(NAME, command, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
