"""Where our train step spends its time: oneDNN primitives by kind, and what lies outside them.

Runs our model's compiled train step (the architectures of ``train_step.py``,
or ``--kind lpd`` / ``lgd``: the unrolled reconstruction networks of
``ellipses.py`` on its geometry, batch and optimizer as there) in a child process with
``ONEDNN_VERBOSE=1``: TensorFlow's oneDNN library then prints one line per
primitive it executes, with its kind (convolution, batch_normalization,
reorder, eltwise, ...), its implementation (e.g.
``brg_conv_fwd:avx10_1_512_amx``), its propagation (forward, backward data,
backward weights) and its milliseconds. The lines of ``--steps`` timed steps
are summed per group and compared with the steps' wall time: the rest
(``outside-onednn``) is what TensorFlow runs with its own kernels (Eigen:
casts, element-wise ops, reductions, optimizer updates) and its overhead.
Primitives may overlap in time (TensorFlow runs independent ops in parallel),
so the groups can sum to more than the wall time; ``reorder`` is time spent
converting layouts (weights into blocked formats, activations back), which
the step would not need if it kept one layout. ``profile_ops.py`` names what
runs outside oneDNN, op type by op type, from TensorFlow's profiler trace.

    python benchmarks/profile_step.py                        # pix2pix 1ch, mixed bfloat16
    python benchmarks/profile_step.py --kind cyclegan --precision float32
    python benchmarks/profile_step.py --width 8 --no-results  # a quick check
    python benchmarks/profile_step.py --kind lpd             # -> profile_step_lpd.json

Rows of ``benchmarks/results/profile_step.json`` (``profile_step_<kind>.json``
for ``lpd`` and ``lgd``): ``step`` (median wall ms of the timed steps, verbose
printing included), then one per group
(``method`` = ``kind/propagation/implementation``) with ``ms`` per step,
``calls`` per step and ``share`` of the step's wall time, largest first, and
``outside-onednn``. The PNG draws the shares.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from _common import RESULTS, print_table, save_figure, write_results

NAME = "profile_step"
#: Markers the child prints around each timed step.
BEGIN, END = "=== kerastrans step begin", "=== kerastrans step end"
#: Groups smaller than this share of the step are summed into one ``other-onednn`` row.
SMALL_SHARE = 0.005


#: Unrolled reconstruction networks, profiled on the ellipses geometry.
UNROLLED = ("lpd", "lgd")


def unrolled_step(kind: str, precision: str) -> tuple[Callable, tuple]:
    """A compiled train step of ``--model lpd``/``lgd`` on the ellipses geometry, and a batch.

    Built by `kerastrans.training.build_model`, as ``kerastrans fit`` builds it,
    from the network and the optimizer settings ``ellipses.py`` trains
    (``_ellipses_methods.UNROLLED_NETWORK`` and ``BUDGETS``), at its batch
    size; random windowed sinograms and images: the step's cost does not
    depend on the values.
    """
    import numpy as np
    import tensorflow as tf
    from _ellipses_methods import BUDGETS, TARGET_WINDOW, UNROLLED_NETWORK

    from kerastrans.config import Config, DataConfig, ModelConfig, TrainingConfig, Window
    from kerastrans.tomo.ellipses import EllipsesProtocol
    from kerastrans.training import build_model

    budget = BUDGETS[kind]
    geometry = EllipsesProtocol().geometry()
    shapes = [(*geometry.sinogram_shape, 1), (*geometry.image_shape, 1)]
    config = Config(
        data=DataConfig(input_window=Window(-100.0, 300.0), target_window=Window(*TARGET_WINDOW)),
        model=ModelConfig(
            kind=kind,
            geometry=geometry.to_dict(),
            input_shape=shapes[0],
            output_shape=shapes[1],
            precision=precision,
            **UNROLLED_NETWORK,
        ),
        training=TrainingConfig(**budget.optimizer_fields()),
    )
    model = build_model(config)
    model.make_train_function()
    rng = np.random.default_rng(0)
    batch = tuple(
        tf.constant(rng.uniform(-1, 1, (budget.batch_size, *shape)).astype("float32"))
        for shape in shapes
    )
    return (lambda data: model.train_function([data])), batch


def build_step(kind: str, channels: int, precision: str, width: int) -> tuple[Callable, tuple]:
    """The compiled train step of a profiled case and a batch for it.

    ``kind`` is one of ``train_step.py``'s architectures (``channels``,
    ``width``, batch 1 at its image size) or an unrolled network
    (`unrolled_step`); TensorFlow gets one intra-op thread per usable core.
    """
    import numpy as np
    import tensorflow as tf
    import train_step

    from kerastrans.precision import precision_scope

    tf.config.threading.set_intra_op_parallelism_threads(train_step.threads())
    with precision_scope(precision):
        if kind in UNROLLED:
            return unrolled_step(kind, precision)
        step = train_step.ours_step(kind, channels, width, jit=False)
    rng = np.random.default_rng(0)
    shape = (1, train_step.SIZE, train_step.SIZE, channels)
    return step, tuple(tf.constant(rng.uniform(-1, 1, shape).astype("float32")) for _ in range(2))


def child(kind: str, channels: int, precision: str, width: int, warmup: int, steps: int) -> None:
    """Run the steps, printing the markers and each step's wall milliseconds."""
    step, batch = build_step(kind, channels, precision, width)
    for _ in range(warmup):
        step(batch)
    for _ in range(steps):
        print(BEGIN, flush=True)
        start = time.perf_counter()
        step(batch)
        print(f"{END} {1000 * (time.perf_counter() - start):.3f}", flush=True)


def parse(lines: Iterable[str]) -> tuple[list[float], dict[str, list[float]]]:
    """The steps' wall milliseconds and, per group, the milliseconds of each primitive call.

    Only the ``exec`` lines between a begin and an end marker count. A group is
    ``kind/propagation/implementation`` (propagation ``-`` where oneDNN has none).

    >>> lines = [BEGIN, "onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,"
    ...          "src dst,,,8x1,0.5", END + " 10.0"]
    >>> parse(lines)
    ([10.0], {'reorder/-/jit:uni': [0.5]})
    """
    walls, groups = [], collections.defaultdict(list)
    inside = False
    for line in lines:
        if line.startswith(BEGIN):
            inside = True
        elif line.startswith(END):
            inside = False
            walls.append(float(line.split()[-1]))
        elif inside and line.startswith("onednn_verbose,") and ",exec," in line:
            fields = line.rstrip().split(",")
            offset = fields.index("exec")
            kind, implementation, propagation = fields[offset + 2 : offset + 5]
            propagation = "-" if propagation == "undef" else propagation
            groups[f"{kind}/{propagation}/{implementation}"].append(float(fields[-1]))
    return walls, dict(groups)


def profile_rows(walls: Sequence[float], groups: dict[str, list[float]]) -> list[dict]:
    """Rows per step: the wall time, each group largest first, small ones and the rest.

    >>> rows = profile_rows([10.0, 10.0], {"a/-/x": [3.0, 3.0], "b/-/y": [0.01]})
    >>> [(r["method"], r["ms"]) for r in rows]
    [('step', 10.0), ('a/-/x', 3.0), ('other-onednn', 0.005), ('outside-onednn', 6.995)]
    """
    wall = statistics.median(walls)
    rows, inside = group_rows(groups, len(walls), wall, "other-onednn")
    rest = max(wall - inside, 0.0)
    rows.append({"method": "outside-onednn", "ms": round(rest, 3), "share": round(rest / wall, 4)})
    return [{"method": "step", "ms": round(wall, 3), "steps": len(walls)}, *rows]


def group_rows(
    groups: dict[str, list[float]], count: int, total: float, other: str
) -> tuple[list[dict], float]:
    """One row per group with its ``ms`` and ``calls`` per step and ``share`` of ``total``.

    ``groups`` holds each group's milliseconds over ``count`` steps. Largest
    first; the groups under `SMALL_SHARE` of ``total`` are summed into one
    row named ``other``. Returns the rows and the groups' summed ms per step.
    """
    rows, small, summed = [], {"method": other, "ms": 0.0, "calls": 0.0}, 0.0
    for name, times in sorted(groups.items(), key=lambda item: -sum(item[1])):
        ms, calls = sum(times) / count, len(times) / count
        summed += ms
        if ms / total < SMALL_SHARE:
            small["ms"] += ms
            small["calls"] += calls
        else:
            rows.append({"method": name, "ms": ms, "calls": calls})
    if small["calls"]:
        rows.append(small)
    for row in rows:
        row["share"] = round(row["ms"] / total, 4)
        row["ms"] = round(row["ms"], 3)
    return rows, summed


def plot(
    rows: Sequence[dict], title: str, path: Path, xlabel: str = "% of the step's wall time"
) -> Path:
    """Horizontal bars: each group's share (of the step's wall time, or ``xlabel``'s)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [row for row in rows if "share" in row]
    figure, axis = plt.subplots(figsize=(9, 0.3 * len(shown) + 1.5), layout="constrained")
    axis.barh(range(len(shown)), [100 * row["share"] for row in shown])
    axis.set_yticks(range(len(shown)), [row["method"] for row in shown], fontsize=7)
    axis.invert_yaxis()
    axis.set_xlabel(xlabel)
    axis.set_title(title, fontsize=9)
    return save_figure(figure, path)


def add_case_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose the profiled step and how many steps are run."""
    parser.add_argument("--kind", choices=("pix2pix", "cyclegan", *UNROLLED), default="pix2pix")
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument(
        "--precision", choices=("float32", "mixed_bfloat16"), default="mixed_bfloat16"
    )
    parser.add_argument("--width", type=int, default=64, help="base channels (64)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps (3)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (5)")
    parser.add_argument("--no-results", action="store_true", help="print only")


def report(
    script: str,
    args: argparse.Namespace,
    argv: list[str] | None,
    rows: list[dict],
    columns: Sequence[str],
    xlabel: str = "% of the step's wall time",
) -> None:
    """Print ``rows``; unless ``--no-results``, save them as the case's JSON and PNG.

    The results are named ``script`` (``profile_step``, ``profile_ops``), with
    ``_<kind>`` for an unrolled network; the JSON's command is this run's.
    """
    print_table(rows, columns)
    if args.no_results:
        return
    if args.kind in UNROLLED:
        name = f"{script}_{args.kind}"
        title = f"{args.kind}, ellipses geometry and batch, {args.precision}"
    else:
        name = script
        title = f"{args.kind} {args.channels}ch, {args.precision}, width {args.width}, batch 1"
    plot(rows, title, RESULTS / f"{name}.png", xlabel)
    arguments = sys.argv[1:] if argv is None else list(argv)
    print(write_results(name, " ".join([f"python benchmarks/{script}.py", *arguments]), rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_case_arguments(parser)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    case = (args.kind, args.channels, args.precision, args.width)
    if args.child:
        child(*case, args.warmup, args.steps)
        return 0
    command = [sys.executable, __file__, "--child", "--kind", args.kind, "--channels",
               str(args.channels), "--precision", args.precision, "--width", str(args.width),
               "--warmup", str(args.warmup), "--steps", str(args.steps)]  # fmt: skip
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", **os.environ, "ONEDNN_VERBOSE": "1"}
    completed = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=True)
    walls, groups = parse(completed.stdout.splitlines())
    if not walls:
        raise SystemExit("no timed step in the child's output: did it fail?")
    if not groups:
        raise SystemExit(
            "no oneDNN line in the child's output: this TensorFlow does not use oneDNN here "
            "(TF_ENABLE_ONEDNN_OPTS=0, or not an x86 build)"
        )
    report(NAME, args, argv, profile_rows(walls, groups), ["method", "ms", "calls", "share"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
