"""Operator timings: ray transform, back-projection and FBP, and the TF layer's overhead.

Usage::

    python benchmarks/operators.py [--quick]

Times (median of repeats, ms per image, ASTRA CPU, one thread) of the forward
ray transform, its adjoint and FBP (Hann) on ODL's default Nyquist-sampled
parallel-beam geometry of 128 x 128, 256 x 256 and 512 x 512 images
(``--quick``: 128 and 256 only). Then the overhead of `RayTransformLayer` over
calling the ODL operator directly on the same batch: both run in the same
loop, interleaved, single-threaded; the ratio is layer time / bare ODL time
(goal: <= 1.10), from the medians of wall times (``ratio``) and of process CPU
times (``cpu_ratio``, less sensitive to other jobs on a shared machine). The
layer inside ``tf.function`` and with its default thread pool is timed too
(these rows use ``backend="odl"``). Last, the TF sparse-matrix operators
(`kerastrans.tomo.tf_operators`) on a batch of 8 in the ellipses geometry
(128 x 128, 30 angles, 183 pixels), inside ``tf.function``, against today's
ODL/ASTRA call on the same batch (`apply_batch`, one thread per core):
``tf-forward-128``, ``tf-adjoint-128``, ``tf-fbp-128`` with ``ms``,
``astra_ms`` and ``speedup`` (goal: >= 5).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _common import RESULTS, median_seconds, print_table, save_figure, write_results

from kerastrans.tomo.geometry import GeometrySpec
from kerastrans.tomo.operators import fbp, ray_transform

NAME = "operators"


def operator_rows(size: int, repeats: int) -> list[dict]:
    """Forward, adjoint and FBP times for one image size."""
    spec = GeometrySpec((size, size))
    forward = ray_transform(spec, impl="astra_cpu")
    operators = {"forward": forward, "adjoint": forward.adjoint, "fbp": fbp(forward)}
    rng = np.random.default_rng(0)
    rows = []
    for name, operator in operators.items():
        x = rng.random(operator.domain.shape, dtype=np.float32)
        rows.append(
            {
                "method": f"{name}-{size}",
                "ms": 1e3 * median_seconds(lambda op=operator, x=x: op(x), repeats=repeats),
                "size": size,
                "num_angles": forward.range.shape[0],
                "det_shape": forward.range.shape[1],
            }
        )
    return rows


def layer_rows(size: int, batch: int, repeats: int) -> list[dict]:
    """Layer vs bare ODL on the same batch, interleaved; median of repeats."""
    import tensorflow as tf

    from kerastrans.tomo.layer import RayTransformLayer

    spec = GeometrySpec((size, size))
    layer = RayTransformLayer(spec, impl="astra_cpu", threads=1, backend="odl")
    threaded = RayTransformLayer(spec, impl="astra_cpu", backend="odl")  # one thread per core
    graph = tf.function(layer)
    operator = layer.operator
    images = np.random.default_rng(1).random((batch, size, size, 1), dtype=np.float32)
    tensor = tf.constant(images)

    def bare() -> list:
        return [operator(images[i, ..., 0]).data for i in range(batch)]

    candidates = {
        "bare": bare,
        "layer": lambda: layer(tensor).numpy(),
        "graph": lambda: graph(tensor).numpy(),
        "threads": lambda: threaded(tensor).numpy(),
    }
    for function in candidates.values():
        function()  # warm-up (tracing, ASTRA set-up)
    wall = {name: [] for name in candidates}
    cpu = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, function in candidates.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            function()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    ms = {name: 1e3 * statistics.median(values) for name, values in wall.items()}
    cpu_ms = {name: 1e3 * statistics.median(values) for name, values in cpu.items()}
    rows = []
    for method, name in (
        ("layer-overhead", "layer"),
        ("layer-overhead-graph", "graph"),
        ("layer-threads", "threads"),
    ):
        rows.append(
            {
                "method": method,
                "ratio": ms[name] / ms["bare"],
                "cpu_ratio": cpu_ms[name] / cpu_ms["bare"],
                "layer_ms": ms[name],
                "bare_ms": ms["bare"],
                "size": size,
                "batch": batch,
            }
        )
    return rows


def tf_rows(batch: int, repeats: int) -> list[dict]:
    """TF sparse-matrix operators vs the ODL/ASTRA call, batch of ``batch``, ellipses geometry."""
    import tensorflow as tf

    from kerastrans.tomo.ellipses import EllipsesProtocol
    from kerastrans.tomo.operators import apply_batch
    from kerastrans.tomo.tf_operators import system_matrix, tf_fbp, tf_ray_transform

    spec = EllipsesProtocol().geometry()
    forward = ray_transform(spec, impl="astra_cpu")
    ours = tf_ray_transform(spec)
    pairs = {
        "forward": (ours, forward),
        "adjoint": (ours.adjoint, forward.adjoint),
        "fbp": (tf_fbp(ours), fbp(forward)),
    }
    rng = np.random.default_rng(2)
    rows = []
    for name, (tf_operator, odl_operator) in pairs.items():
        x = rng.random((batch, *odl_operator.domain.shape), dtype=np.float32)
        spec_in = tf.TensorSpec([None, *odl_operator.domain.shape, 1], tf.float32)
        graph = tf.function(tf_operator, input_signature=[spec_in])
        tensor = tf.constant(x[..., None])
        ms = 1e3 * median_seconds(lambda g=graph, t=tensor: g(t).numpy(), repeats=repeats)
        astra_ms = 1e3 * median_seconds(
            lambda op=odl_operator, x=x: apply_batch(op, x), repeats=repeats
        )
        rows.append(
            {
                "method": f"tf-{name}-128",
                "ms": ms,
                "astra_ms": astra_ms,
                "speedup": astra_ms / ms,
                "batch": batch,
                "nnz": int(system_matrix(spec).nnz),
            }
        )
    return rows


def plot(rows: list[dict], path: Path) -> None:
    """Bar chart of ms per image for each operator and size (log scale)."""
    import matplotlib.pyplot as plt

    rows = [row for row in rows if "ms" in row and not row["method"].startswith("tf-")]
    sizes = sorted({row["size"] for row in rows})
    names = ("forward", "adjoint", "fbp")
    figure, axis = plt.subplots(figsize=(6, 3.5))
    width = 0.25
    for offset, name in enumerate(names):
        values = [next(r["ms"] for r in rows if r["method"] == f"{name}-{s}") for s in sizes]
        axis.bar(np.arange(len(sizes)) + (offset - 1) * width, values, width, label=name)
    axis.set_xticks(np.arange(len(sizes)), [f"{s} x {s}" for s in sizes])
    axis.set_yscale("log")
    axis.set_ylabel("ms per image (ASTRA CPU, 1 thread)")
    axis.set_title("ODL operators, Nyquist-sampled parallel beam")
    axis.legend()
    save_figure(figure, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip 512 x 512, fewer repeats")
    args = parser.parse_args(argv)
    sizes = (128, 256) if args.quick else (128, 256, 512)
    rows = []
    for size in sizes:
        rows += operator_rows(size, repeats=3 if size == 512 or args.quick else 5)
    rows += layer_rows(128, batch=8, repeats=9 if args.quick else 25)
    rows += tf_rows(batch=8, repeats=9 if args.quick else 25)
    print_table(rows)
    plot(rows, RESULTS / f"{NAME}.png")
    command = "python benchmarks/operators.py" + (" --quick" if args.quick else "")
    write_results(NAME, command, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
