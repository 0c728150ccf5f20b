"""Train-step time of our Pix2Pix and CycleGAN against plain Keras and PyTorch, in one run.

For each architecture the same network is built three times: as our model
(`kerastrans.models.Pix2Pix` / `CycleGAN`, stepped through Keras' own compiled
``train_function``, the path ``fit`` takes), as plain Keras code the way the
TensorFlow tutorials write it (`_plain_keras`), and as a PyTorch reference
written from the papers (`_torch_reference`, when torch is importable:
``pip install -e ".[bench]"``). Their steps alternate one by one, so load from
other processes on this shared machine hits all alike; ``ratio = ms /
plain_ms`` is what our abstractions cost, ``pytorch_ratio = ms / PyTorch ms``
at the same precision and, for ``-bf16`` rows, ``pytorch_float32_ratio = ms /
PyTorch float32 ms`` (medians of this run).

- ``pix2pix-Nch``: U-Net 256 x 256 with 8 levels, 64 base channels, batch
  norm, dropout 0.5 in the 3 deepest decoder levels, transposed-conv
  up-sampling; conditional 70 x 70 PatchGAN; vanilla GAN + 100 x L1; batch 1.
- ``cyclegan-1ch``: two ResNet generators (9 residual blocks, instance norm),
  two 70 x 70 PatchGANs (instance norm), LSGAN, cycle 10, identity 5; batch 1;
  no image pool (the tutorials have none).

Each runs in float32 and in mixed bfloat16 (``-bf16`` rows; PyTorch:
``torch.autocast("cpu", dtype=torch.bfloat16)``), ours and plain Keras also
with XLA (``jit_*`` keys; nothing in kerastrans enables XLA by default). Our
networks use our own layers where they are faster: batch normalisation by the
fused TensorFlow kernel (`kerastrans.nets.FusedBatchNormalization`), instance
normalisation with its affine parameters folded into one multiply-add,
convolutions on small maps as matrix products (`kerastrans.nets.conv`), and
Adam by TensorFlow's fused kernel (`kerastrans.optimizers.FusedAdam`, the
default of ``fit``); plain Keras uses `keras.optimizers.Adam`.
TensorFlow and PyTorch both use every core the process may run on
(``os.sched_getaffinity``; the rows' ``threads``).

The physical limit: the run first measures the best GFLOP/s of large float32
and bfloat16 matmuls and 3 x 3 convolutions (rows ``peak-matmul-*``,
``peak-conv-*``), and each row gets ``gflops``, the step's FLOPs counted from
its layers (see `_flops` for the convention), and ``peak_fraction = gflops /
(ms / 1000) / peak``, the peak being the faster probe of the row's precision.
Each row runs in its own process.

    python benchmarks/train_step.py            # everything, writes results/train_step.json
    python benchmarks/train_step.py --quick    # pix2pix 1 channel only, fewer repeats
    python benchmarks/train_step.py --smoke    # every row on networks 8 x narrower: a check
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from _common import RESULTS, print_table, save_figure, write_results

NAME = "train_step"
SIZE = 256
#: Base channels of the published networks (``--width``).
WIDTH = 64
PRECISIONS = ("float32", "mixed_bfloat16")
#: Precision of the peak probes that bound each precision's rows.
PEAK_DTYPES = {"float32": "float32", "mixed_bfloat16": "bfloat16"}
CASES = (("pix2pix", 1), ("pix2pix", 3), ("cyclegan", 1))
#: Cases with a PyTorch reference row.
PYTORCH_CASES = (("pix2pix", 1), ("cyclegan", 1))
BF16_SUFFIX = "-bf16"


def architecture(kind: str, width: int = WIDTH) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Generator channels per level and discriminator block channels for base ``width``.

    >>> architecture("cyclegan")
    ((64, 128, 256), (64, 128, 256, 512))
    """
    levels = (1, 2, 4, 8, 8, 8, 8, 8) if kind == "pix2pix" else (1, 2, 4)
    return tuple(width * m for m in levels), tuple(width * m for m in (1, 2, 4, 8))


def method(kind: str, channels: int, precision: str, framework: str = "") -> str:
    """Row name, e.g. ``pix2pix-1ch``, ``pytorch-cyclegan-1ch-bf16``."""
    suffix = "" if precision == "float32" else BF16_SUFFIX
    return f"{framework + '-' if framework else ''}{kind}-{channels}ch{suffix}"


# -- ours ----------------------------------------------------------------------------------


def ours_model(kind: str, channels: int, width: int):
    """Our model of ``kind`` in the benchmark's architecture (global dtype policy)."""
    from kerastrans.models import CycleGAN, Pix2Pix

    levels, widths = architecture(kind, width)
    shape, discriminator = (SIZE, SIZE, channels), {"base_channels": widths[0]}
    if kind == "pix2pix":
        generator = {
            "channels": levels,
            "stem_kernel": None,
            "kernel_size": 4,
            "up": "transpose",
            "encoder_activation": "leaky_relu",
            "dropout": 0.5,
            "dropout_levels": 3,
        }
        return Pix2Pix(shape, channels, generator, discriminator, seed=0)
    generator = {
        "channels": levels,
        "residual_blocks": 9,
        "norm": "instance",
        "skip": "none",
        "up": "transpose",
    }
    return CycleGAN(shape, channels, generator, discriminator, pool_size=0, seed=0)


def ours_step(kind: str, channels: int, width: int, jit: bool) -> Callable:
    """Our model, compiled; return a function that runs one train step on a batch."""
    model = ours_model(kind, channels, width)
    model.compile(jit_compile=jit)  # the models' default optimizers: FusedAdam(2e-4, beta_1=0.5)
    model.make_train_function()

    def step(batch):
        logs = model.train_function([batch])
        return float(logs["g_loss"])

    return step


def ours_macs(kind: str, channels: int, width: int) -> tuple[int, int]:
    """Forward MACs of one of our generators and one discriminator (a float32 copy)."""
    import keras
    import numpy as np
    from _flops import keras_forward_macs

    from kerastrans.precision import precision_scope

    with precision_scope("float32"):
        model = ours_model(kind, channels, width)
    image = np.zeros((1, SIZE, SIZE, channels), "float32")
    if kind == "pix2pix":
        pair = np.zeros((1, SIZE, SIZE, 2 * channels), "float32")
        macs = (
            keras_forward_macs(model.generator, image),
            keras_forward_macs(model.discriminator, pair),
        )
    else:
        macs = (
            keras_forward_macs(model.generator_g, image),
            keras_forward_macs(model.discriminator_a, image),
        )
    del model
    keras.backend.clear_session()
    return macs


# -- measurement ---------------------------------------------------------------------------


def threads() -> int:
    """Cores this process may run on: the thread count of TensorFlow and PyTorch alike."""
    from kerastrans.hardware import usable_cores

    return usable_cores()


def interleaved_ms(
    steps: dict[str, Callable[[], object]], warmup: int, repeats: int
) -> dict[str, float]:
    """Median milliseconds of each step, the steps alternating one by one after warm-up."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            times[key].append(1000 * (time.perf_counter() - start))
    return {key: statistics.median(values) for key, values in times.items()}


def pytorch_step(kind: str, arrays, width: int, precision: str) -> tuple[Callable, dict]:
    """The PyTorch reference step on ``arrays`` and its row (without ``ms``)."""
    import torch
    from _flops import step_gflops
    from _torch_reference import make_step

    torch.set_num_threads(threads())
    levels, widths = architecture(kind, width)
    step, g_macs, d_macs = make_step(kind, arrays, levels, widths, precision != "float32")
    row = {
        "method": method(kind, arrays[0].shape[-1], precision, "pytorch"),
        "gflops": round(step_gflops(kind, g_macs, d_macs), 2),
        "threads": torch.get_num_threads(),
    }
    return step, row


def measure(
    kind: str, channels: int, precision: str, width: int, warmup: int, repeats: int, pytorch: bool
) -> list[dict]:
    """Our row (ours and plain Keras, without and with XLA) and, if ``pytorch``, PyTorch's."""
    import keras
    import numpy as np
    import tensorflow as tf
    from _flops import step_gflops
    from _plain_keras import plain_step

    from kerastrans.precision import precision_scope

    tf.config.threading.set_intra_op_parallelism_threads(threads())
    rng = np.random.default_rng(0)
    arrays = [rng.uniform(-1, 1, (1, SIZE, SIZE, channels)).astype("float32") for _ in range(2)]
    batch = tuple(tf.constant(array) for array in arrays)
    gflops = step_gflops(kind, *ours_macs(kind, channels, width))
    row = {"method": method(kind, channels, precision), "gflops": round(gflops, 2)}
    rows = [row]
    for jit in (False, True):
        with precision_scope(precision):
            steps = {
                "ours": functools.partial(ours_step(kind, channels, width, jit), batch),
                "plain": functools.partial(
                    plain_step(kind, SIZE, channels, *architecture(kind, width), jit), batch
                ),
            }
            if pytorch and not jit:
                steps["pytorch"], torch_row = pytorch_step(kind, arrays, width, precision)
                rows.append(torch_row)
            ms = interleaved_ms(steps, warmup, repeats)
        del steps
        keras.backend.clear_session()
        gc.collect()
        prefix = "jit_" if jit else ""
        row.update(
            {
                f"{prefix}ms": round(ms["ours"], 1),
                f"{prefix}plain_ms": round(ms["plain"], 1),
                f"{prefix}ratio": round(ms["ours"] / ms["plain"], 3),
            }
        )
        if "pytorch" in ms:
            rows[-1]["ms"] = round(ms["pytorch"], 1)
        times = "  ".join(f"{key} {value:8.1f} ms" for key, value in ms.items())
        print(f"  {row['method']:>18} jit={jit!s:5} {times}", file=sys.stderr, flush=True)
    return rows


def measure_peaks(size: int, repeats: int) -> list[dict]:
    """Rows ``peak-matmul-*`` and ``peak-conv-*`` of float32 and bfloat16 (best GFLOP/s).

    ``size`` is the matmul's side; the convolution maps are ``size / 64``
    pixels wide (64 for the default 4096), 256 channels, batch 8.
    """
    import tensorflow as tf
    from _flops import conv_peak_gflops, matmul_peak_gflops

    tf.config.threading.set_intra_op_parallelism_threads(threads())
    conv_size = max(8, size // 64)
    rows = []
    for dtype in PEAK_DTYPES.values():
        matmul = matmul_peak_gflops(dtype, size, repeats)
        conv = conv_peak_gflops(dtype, conv_size, repeats=repeats)
        rows.append(
            {"method": f"peak-matmul-{dtype}", "gflop_per_s": round(matmul, 1), "size": size}
        )
        rows.append(
            {"method": f"peak-conv-{dtype}", "gflop_per_s": round(conv, 1), "size": conv_size}
        )
    return rows


def finish_rows(rows: Sequence[dict]) -> list[dict]:
    """Add each step row's ``peak_fraction`` and our rows' ratios to PyTorch, from one run.

    ``peak_fraction`` divides the row's GFLOP/s (``gflops`` / ``ms``) by the
    peak of its precision (the faster of its ``peak-*`` probes);
    ``pytorch_ratio`` is ``ms`` over the PyTorch row of the same case and
    precision, ``pytorch_float32_ratio`` (``-bf16`` rows) over the PyTorch
    float32 row. Rows without a counterpart get no key.
    """
    by_method = {row["method"]: row for row in rows}
    peaks: dict[str, float] = {}
    for row in rows:
        if row["method"].startswith("peak-"):
            dtype = row["method"].rsplit("-", 1)[1]
            peaks[dtype] = max(peaks.get(dtype, 0.0), row["gflop_per_s"])
    finished = []
    for row in rows:
        row = dict(row)
        if "ms" in row:
            bf16 = row["method"].endswith(BF16_SUFFIX)
            peak = peaks.get("bfloat16" if bf16 else "float32")
            if peak is not None and "gflops" in row:
                rate = row["gflops"] / (row["ms"] / 1000)
                row["peak_fraction"] = round(rate / peak, 4)
            if not row["method"].startswith("pytorch-"):
                float32 = row["method"].removesuffix(BF16_SUFFIX)
                for key, name in (
                    ("pytorch_ratio", row["method"]),
                    ("pytorch_float32_ratio", float32),
                ):
                    reference = by_method.get(f"pytorch-{name}")
                    if reference is not None and (key == "pytorch_ratio" or bf16):
                        row[key] = round(row["ms"] / reference["ms"], 3)
        finished.append(row)
    return finished


def plot(rows: list[dict], path) -> None:
    """Bar chart of ours / plain per row, without and with XLA, labelled with the times."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure, axis = plt.subplots(figsize=(10, 4.5))
    positions = np.arange(len(rows))
    for offset, prefix, label in ((-0.2, "", "without XLA"), (0.2, "jit_", "with XLA")):
        ratios = [row[f"{prefix}ratio"] for row in rows]
        bars = axis.bar(positions + offset, ratios, 0.4, label=label)
        for bar, row in zip(bars, rows, strict=True):
            text = f"{row[f'{prefix}ms']:.0f}\n{row[f'{prefix}plain_ms']:.0f}"
            axis.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
            )
    axis.axhline(1.0, color="black", linewidth=0.8)
    axis.set_xticks(positions, [row["method"] for row in rows], rotation=20, ha="right")
    axis.set_ylabel("train step time, kerastrans / plain Keras")
    axis.set_title("256 x 256, batch 1 (labels: ours / plain median ms)")
    axis.set_ylim(0, max(1.3, 1.15 * max(r[k] for r in rows for k in ("ratio", "jit_ratio"))))
    axis.legend(loc="lower right")
    save_figure(figure, path)


def summary(rows: Sequence[dict]) -> list[str]:
    """One line per bfloat16 row of ours against the issue's goals."""
    lines = []
    for row in rows:
        if not row["method"].endswith(BF16_SUFFIX) or row["method"].startswith(("pytorch", "peak")):
            continue
        parts = [f"{row['method']}: {row['ms']:.0f} ms"]
        if "pytorch_float32_ratio" in row:
            parts.append(f"{row['pytorch_float32_ratio']:.2f} x PyTorch float32 (goal <= 0.5)")
        if "pytorch_ratio" in row:
            parts.append(f"{row['pytorch_ratio']:.2f} x PyTorch bfloat16 (goal <= 0.8)")
        if "peak_fraction" in row:
            parts.append(f"{100 * row['peak_fraction']:.1f} % of the bfloat16 peak")
        lines.append(", ".join(parts))
    return lines


def run_in_subprocess(arguments: list[str]) -> list[dict]:
    """This script with ``arguments`` in a fresh process (no model or XLA cache outlives it)."""
    command = [sys.executable, __file__, *arguments]
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pix2pix 1 channel only, 1 + 3 steps")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="every row with 8 x narrower networks, 1 + 2 steps, a small peak matmul: a check",
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model (2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per model (5)")
    parser.add_argument("--width", type=int, default=WIDTH, help="base channels (64)")
    parser.add_argument("--peak-size", type=int, default=4096, help="matmul side (4096)")
    parser.add_argument("--no-pytorch", action="store_true", help="skip the PyTorch rows")
    parser.add_argument(
        "--results",
        type=Path,
        help="folder of the JSON and PNG (default benchmarks/results; none for --quick/--smoke)",
    )
    parser.add_argument("--row", help=argparse.SUPPRESS)  # kind:channels:precision, internal
    parser.add_argument("--pytorch", action="store_true", help=argparse.SUPPRESS)  # with --row
    parser.add_argument("--peak", action="store_true", help=argparse.SUPPRESS)  # internal
    args = parser.parse_args(argv)
    cases, warmup, repeats, width, peak_size = (
        CASES,
        args.warmup,
        args.repeats,
        args.width,
        args.peak_size,
    )
    if args.quick:
        cases, warmup, repeats = [("pix2pix", 1)], 1, 3
    if args.smoke:
        warmup, repeats, width, peak_size = 1, 2, WIDTH // 8, 512
    if args.peak:
        print(json.dumps(measure_peaks(args.peak_size, repeats=10)))
        return 0
    if args.row:
        kind, channels, precision = args.row.split(":")
        rows = measure(kind, int(channels), precision, width, warmup, repeats, args.pytorch)
        print(json.dumps(rows))
        return 0

    pytorch = not args.no_pytorch and importlib.util.find_spec("torch") is not None
    if not pytorch:
        print("no PyTorch rows (torch is not importable or --no-pytorch)", file=sys.stderr)
    common = ["--width", str(width), "--warmup", str(warmup), "--repeats", str(repeats)]
    load_before = round(os.getloadavg()[0], 2)
    rows = run_in_subprocess(["--peak", "--peak-size", str(peak_size)])
    for precision in PRECISIONS:
        for kind, channels in cases:
            reference = ["--pytorch"] if pytorch and (kind, channels) in PYTORCH_CASES else []
            case = f"{kind}:{channels}:{precision}"
            rows += run_in_subprocess(["--row", case, *common, *reference])
    # Other processes' load: PyTorch's OpenMP threads slow down many-fold when the cores are
    # oversubscribed (TensorFlow's thread pool much less), so a loaded run favours TensorFlow.
    load = {
        "method": "load-average-1min",
        "before": load_before,
        "after": round(os.getloadavg()[0], 2),
    }
    rows = finish_rows([*rows, load])
    for group in ("pytorch-", "peak-", "load-"):
        print_table([r for r in rows if r["method"].startswith(group)])
        print()
    print_table([r for r in rows if "jit_ms" in r])
    print()
    print("\n".join(summary(rows)))
    folder = args.results or (None if args.quick or args.smoke else RESULTS)
    if folder is not None:
        command = " ".join(["python benchmarks/train_step.py", *(argv or sys.argv[1:])])
        plot([r for r in rows if "jit_ratio" in r], Path(folder) / f"{NAME}.png")
        print(write_results(NAME, command, rows, folder=Path(folder)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
