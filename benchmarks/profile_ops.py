"""Where our train step spends its time, by TensorFlow op type: the TF profiler's trace.

``profile_step.py`` sums the oneDNN primitives of a step (convolutions,
reorders) and reports the rest as ``outside-onednn``. This script names that
rest and the whole step: it traces ``--steps`` train steps (the same cases:
``--kind pix2pix|cyclegan|lpd|lgd``) with ``tf.profiler`` and sums, per op
type (``SparseTensorDenseMatMul``, ``Relu``, ``_MklNativeConv2DBackpropFilter``,
``ResourceApplyAdam``, ...), the time its ops ran on TensorFlow's threads.
That is thread time: independent ops run at once on the cores, so the types
sum to more than the step's wall time, and their sum over the wall time
(``parallelism`` of the ``step`` row) says how many cores the step kept busy
on average. An op's time includes the wait for the intra-op threads it splits
its work over.

    python benchmarks/profile_ops.py --kind lpd     # -> results/profile_ops_lpd.json, .png
    python benchmarks/profile_ops.py --kind pix2pix --precision float32 --no-results

Rows of ``benchmarks/results/profile_ops.json`` (``profile_ops_<kind>.json``
for ``lpd`` and ``lgd``): ``step`` (median wall ms of the traced steps, tracing
included; ``parallelism``), then one per op type with ``ms`` (thread ms per
step), ``calls`` per step and ``share`` of the summed thread time, largest
first, the types under half a percent summed into ``other-ops``. The PNG draws
the shares.
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from profile_step import add_case_arguments, build_step, group_rows, report

NAME = "profile_ops"
#: The trace's plane of the host's threads.
HOST_PLANE = "/host:CPU"
#: An op's event in the trace is named ``<op name>:<op type>``.
OP_EVENT = re.compile(r"[^:\s]+:(?P<type>[A-Za-z_]\w*)")


def trace(step: Callable, batch: tuple, warmup: int, steps: int) -> tuple[list[float], Any]:
    """Run ``warmup`` untraced steps and ``steps`` traced ones.

    Returns:
        The traced steps' wall milliseconds and the trace (an ``XSpace`` proto).
    """
    import tensorflow as tf

    xplane_pb2 = _xplane_module()
    for _ in range(warmup):
        step(batch)
    walls = []
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            for _ in range(steps):
                start = time.perf_counter()
                step(batch)
                walls.append(1000 * (time.perf_counter() - start))
        finally:
            tf.profiler.experimental.stop()
        files = sorted(Path(logdir).glob("plugins/profile/*/*.xplane.pb"))
        if not files:
            raise SystemExit(f"tf.profiler wrote no trace (*.xplane.pb) under {logdir}")
        return walls, xplane_pb2.XSpace.FromString(files[-1].read_bytes())


def op_durations(space: Any) -> dict[str, list[float]]:
    """The milliseconds of every op event of the host plane, grouped by op type.

    Other events (the executor's ``ExecutorState::Process`` around each op,
    thread-pool regions, the Python call) are not ops and are left out.
    """
    groups = collections.defaultdict(list)
    for plane in space.planes:
        if plane.name != HOST_PLANE:
            continue
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                match = OP_EVENT.fullmatch(names.get(event.metadata_id, ""))
                if match:
                    groups[match["type"]].append(event.duration_ps / 1e9)
    return dict(groups)


def op_rows(walls: Sequence[float], groups: dict[str, list[float]]) -> list[dict]:
    """Rows per step: the wall time with the parallelism, then each op type largest first.

    >>> groups = {"Relu": [12.0, 12.0], "Mul": [7.99, 7.99], "Neg": [0.01, 0.01]}
    >>> rows = op_rows([10.0, 10.0], groups)
    >>> [(r["method"], r["ms"], r.get("share")) for r in rows]
    [('step', 10.0, None), ('Relu', 12.0, 0.6), ('Mul', 7.99, 0.3995), ('other-ops', 0.01, 0.0005)]
    >>> rows[0]["parallelism"]
    2.0
    """
    wall = statistics.median(walls)
    total = sum(map(sum, groups.values())) / len(walls)
    rows, _ = group_rows(groups, len(walls), total, "other-ops")
    step = {"method": "step", "ms": round(wall, 3), "steps": len(walls)}
    return [{**step, "parallelism": round(total / wall, 3)}, *rows]


def _xplane_module() -> Any:
    """TensorFlow's copy of the trace's protobuf module (``XSpace``), or a one-line exit."""
    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError as error:
        raise SystemExit(f"this TensorFlow cannot read its profiler traces: {error}") from None
    return xplane_pb2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_case_arguments(parser)
    args = parser.parse_args(argv)
    step, batch = build_step(args.kind, args.channels, args.precision, args.width)
    walls, space = trace(step, batch, args.warmup, args.steps)
    groups = op_durations(space)
    if not groups:
        raise SystemExit("the trace holds no op of the host: did the step run on another device?")
    columns = ["method", "ms", "calls", "share", "parallelism"]
    xlabel = "% of the step's summed thread time"
    report(NAME, args, argv, op_rows(walls, groups), columns, xlabel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
