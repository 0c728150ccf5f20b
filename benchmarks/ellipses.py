"""Reconstruction on the dival "ellipses" protocol: FBP baseline (one function per method).

Usage::

    python benchmarks/ellipses.py [--n-test 1000] [--n-validation 200] [--quick]

Builds the first ``--n-test`` test and ``--n-validation`` validation samples
of the protocol (`kerastrans.tomo.ellipses.EllipsesProtocol`, timed), runs
every method in `METHODS` and scores it as dival does (PSNR/SSIM with the data
range of each ground truth), on all test images and on the first 100 (the
published figures use 100). Methods tune on validation data only.

Published FBP (Baguer, Leuschner & Schmidt, Inverse Problems 36, 2020): 24.18
dB / 0.594 SSIM on 100 test images; our build is faithful when our FBP lands
within 0.7 dB of that.

To add a method: write ``def my_method(data: Data) -> Result`` and register it
in `METHODS`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import RESULTS, print_table, save_figure, write_results

from kerastrans.metrics import evaluate
from kerastrans.tomo.baseline import evaluate_fbp, tune_fbp
from kerastrans.tomo.ellipses import EllipsesProtocol

NAME = "ellipses"
#: Published figures on the first 100 test images (Baguer et al. 2020).
PUBLISHED = {"fbp": {"psnr": 24.18, "ssim": 0.594}}
#: How far our FBP may land from the published one for the build to count as faithful.
FAITHFUL_DB = 0.7


@dataclasses.dataclass
class Data:
    """The benchmark data: float32 stacks without a channel axis."""

    protocol: EllipsesProtocol
    validation_inputs: np.ndarray
    validation_targets: np.ndarray
    test_inputs: np.ndarray
    test_targets: np.ndarray


@dataclasses.dataclass
class Result:
    """What a method returns: its test reconstructions and extra row keys."""

    reconstructions: np.ndarray
    extra: dict


def build_data(n_validation: int, n_test: int) -> tuple[Data, dict]:
    """Simulate the splits; return the data and a timing row."""
    protocol = EllipsesProtocol()
    stacks, seconds = {}, {}
    for split, count in (("validation", n_validation), ("test", n_test)):
        start = time.perf_counter()
        records = list(protocol.examples(split, count))
        seconds[split] = time.perf_counter() - start
        stacks[split] = [np.stack([r[key][..., 0] for r in records]) for key in ("input", "target")]
    data = Data(protocol, *stacks["validation"], *stacks["test"])
    row = {
        "method": "build-test-data",
        "seconds": seconds["test"],
        "n_test": n_test,
        "ms_per_image": 1e3 * seconds["test"] / max(n_test, 1),
        "validation_seconds": seconds["validation"],
    }
    return data, row


def fbp_method(data: Data) -> Result:
    """FBP, Hann filter, frequency scaling grid-searched on the validation split."""
    geometry = data.protocol.geometry()
    tuning = tune_fbp(data.validation_inputs, data.validation_targets, geometry)
    _, recos = evaluate_fbp(
        data.test_inputs, data.test_targets, geometry, frequency_scaling=tuning.frequency_scaling
    )
    extra = {
        "frequency_scaling": tuning.frequency_scaling,
        "validation_psnr": tuning.psnr,
        "n_validation": tuning.n,
    }
    return Result(recos, extra)


#: Methods run by this benchmark, by row name.
METHODS: dict[str, Callable[[Data], Result]] = {"fbp": fbp_method}


def score(name: str, result: Result, data: Data, seconds: float) -> dict:
    """One results row: metrics on all test images and on the first 100."""
    full = evaluate(result.reconstructions, data.test_targets)
    first = evaluate(result.reconstructions[:100], data.test_targets[:100])
    return {
        "method": name,
        "psnr": full["psnr"],
        "ssim": full["ssim"],
        "rmse": full["rmse"],
        "n_test": full["n"],
        "psnr_first100": first["psnr"],
        "ssim_first100": first["ssim"],
        **result.extra,
        "seconds": seconds,
    }


def plot(data: Data, results: dict[str, Result], rows: list[dict], path: Path) -> None:
    """Sample images (ground truth and each method) and a PSNR bar chart vs published."""
    import matplotlib.pyplot as plt

    samples = range(min(3, len(data.test_targets)))
    columns = 1 + len(results)
    figure = plt.figure(figsize=(2.3 * columns + 5, 2.3 * len(samples)), layout="constrained")
    grid = figure.add_gridspec(len(samples), columns + 2)
    for row, index in enumerate(samples):
        images = {"ground truth": data.test_targets[index]}
        images.update({name: result.reconstructions[index] for name, result in results.items()})
        for column, (title, image) in enumerate(images.items()):
            axis = figure.add_subplot(grid[row, column])
            axis.imshow(image.T, cmap="gray", vmin=0, vmax=1, origin="lower")
            axis.set_axis_off()
            axis.set_title(f"{title} #{index}", fontsize=8)
    bars = figure.add_subplot(grid[:, columns:])
    methods = [r for r in rows if "psnr_first100" in r]
    labels, values = [], []
    for r in methods:
        labels += [f"{r['method']}\n(ours, 100)", f"{r['method']}\n(ours, {r['n_test']})"]
        values += [r["psnr_first100"], r["psnr"]]
        if r["method"] in PUBLISHED:
            labels.append(f"{r['method']}\n(published, 100)")
            values.append(PUBLISHED[r["method"]]["psnr"])
    drawn = bars.bar(range(len(values)), values, color=["C0", "C0", "C1"] * len(methods))
    bars.bar_label(drawn, fmt="%.2f", fontsize=7)
    bars.set_xticks(range(len(values)), labels, fontsize=7)
    bars.set_ylim(min(values) - 2, max(values) + 1)
    bars.set_ylabel("PSNR (dB)")
    bars.set_title("ellipses test set")
    save_figure(figure, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-test", type=int, default=1000, help="test images (default 1000)")
    parser.add_argument("--n-validation", type=int, default=200, help="validation images")
    parser.add_argument("--quick", action="store_true", help="100 test, 50 validation images")
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=list(METHODS))
    args = parser.parse_args(argv)
    n_test, n_validation = (100, 50) if args.quick else (args.n_test, args.n_validation)

    data, build_row = build_data(n_validation, n_test)
    rows, results = [], {}
    for name in args.methods:
        start = time.perf_counter()
        results[name] = METHODS[name](data)
        rows.append(score(name, results[name], data, time.perf_counter() - start))
    rows.append(build_row)

    print_table(rows)
    for row in rows:
        if row["method"] in PUBLISHED:
            published = PUBLISHED[row["method"]]
            gap = row["psnr_first100"] - published["psnr"]
            verdict = "faithful" if abs(gap) <= FAITHFUL_DB else "NOT faithful"
            print(
                f"\n{row['method']}: first 100 test images {row['psnr_first100']:.2f} dB / "
                f"{row['ssim_first100']:.3f} vs published {published['psnr']:.2f} dB / "
                f"{published['ssim']:.3f} ({gap:+.2f} dB: {verdict}, tolerance {FAITHFUL_DB} dB)"
            )
    plot(data, results, rows, RESULTS / f"{NAME}.png")
    command = "python benchmarks/ellipses.py" + (
        " --quick" if args.quick else f" --n-test {n_test} --n-validation {n_validation}"
    )
    write_results(NAME, command, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
