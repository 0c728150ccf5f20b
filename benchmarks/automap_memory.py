"""Peak memory of AUTOMAP training against the model's own estimate, and the refusal check.

Usage::

    python benchmarks/automap_memory.py [--steps 3] [--batch-size 4]
    python benchmarks/automap_memory.py --quick    # 3 small configs; nothing in results/

AUTOMAP's fully connected (FC) layers take ``(sinogram pixels) x (image
pixels)`` weights, so `kerastrans.models.Automap` estimates their training
memory (`kerastrans.models.automap_memory_estimate`: 28 bytes per FC
parameter in float32 (weight, gradient, two Adam moments and three transient
copies at the peak), + a 16-bit copy under mixed precision, + the FC
activations and their gradients, + 64 MiB for the build and the traced step) and refuses to build a
configuration whose estimate exceeds the memory limit (default
``MemAvailable``).

Protocol. Each configuration (image size, sinogram of angles x detector
pixels, FC layers; 93 and 183 detector pixels are ODL's default sampling of
64 x 64 and 128 x 128 images, 143 and 285 angles its full sampling) runs in a
fresh Python process: import TensorFlow, Keras and kerastrans, make random
training arrays (batch 4), run one tiny eager op (the TF runtime starts),
then read the resident memory (``VmRSS``) as the baseline; build and compile
the model (Adam), run ``--steps`` training steps (``train_on_batch``, the
first one traces) and read the process's peak resident memory
(``ru_maxrss``). ``peak_mb`` is that peak minus the baseline: the memory the
model itself took, without the fixed ~0.5-1 GB of the imported libraries,
which a separate "import only" process would subtract only up to its own
run-to-run variation. ``build_mb`` is the peak after building (weights
initialised, optimizer not yet created), ``ratio`` is ``peak_mb /
estimate_mb`` (1 MB = 2**20 bytes). The ``tiny`` config (8 x 8 image, its
estimate ~0.1 MB) measures what any model costs besides its FC layers:
tracing the train step, the convolutional refinement and the runtime's
caches. Configurations whose estimate is over half of ``MemAvailable`` are
skipped (stated). Then two configurations are built over a limit and must be
refused before any weight is made: 128 x 128 with 2 FC layers (9.4 GiB)
under ``memory_limit=1 GiB``, and 512 x 512 with 1 FC layer under the
default limit (``MemAvailable``); the refusal message is printed.

``bytes_per_param`` is the peak per FC parameter (the estimate counts 28
bytes in float32, 30 under mixed precision, plus the activations and the
fixed 64 MiB). The per-parameter figure of the estimate was set from this
benchmark's first run (peaks of 21-29 bytes per parameter, when the estimate
still counted 16).

Goal: for every configuration whose FC layers dominate (estimate >= 100 MB)
the estimate bounds the measured peak without being more than twice too
high (0.5 <= ratio <= 1: a configuration the check accepts then fits), and
both over-limit configurations are refused with their estimate.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

from _common import RESULTS, print_table, save_figure, write_results
from _training import WORK

NAME = "automap_memory"
MB = 2**20
#: Estimates below this are dominated by the fixed costs, not by the FC layers.
DOMINANT_MB = 100.0
#: The estimate should bound the peak (a config it accepts fits) without being over 2 x high.
RATIO_GOAL = (0.5, 1.0)

#: (image side, angles, detector pixels, FC layers, precision)
CONFIGS = {
    "tiny": (8, 6, 10, 2, "float32"),
    "64, 30x93, 1 FC": (64, 30, 93, 1, "float32"),
    "64, 30x93, 2 FC": (64, 30, 93, 2, "float32"),
    "64, 30x93, 2 FC, bf16": (64, 30, 93, 2, "mixed_bfloat16"),
    "64, 143x93, 2 FC": (64, 143, 93, 2, "float32"),
    "128, 30x183, 1 FC": (128, 30, 183, 1, "float32"),
    "128, 60x183, 1 FC": (128, 60, 183, 1, "float32"),
    "128, 30x183, 2 FC": (128, 30, 183, 2, "float32"),
}
QUICK = ("tiny", "64, 30x93, 1 FC", "64, 30x93, 2 FC")


# -- one configuration, in its own process ------------------------------------------------------


def resident_mb() -> float:
    """Current resident memory of this process (``VmRSS``), MB."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / MB
    raise RuntimeError("no VmRSS in /proc/self/status")


def peak_mb() -> float:
    """Peak resident memory of this process so far (``ru_maxrss``, KiB on Linux), MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB


def measure(name: str, batch_size: int, steps: int) -> dict:
    """Build and train one configuration; return its row (run this in a fresh process)."""
    import keras
    import numpy as np

    from kerastrans.models import Automap, automap_memory_estimate

    image, angles, detectors, fc_layers, precision = CONFIGS[name]
    sinogram_shape, image_shape = (angles, detectors, 1), (image, image, 1)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch_size, *sinogram_shape)).astype(np.float32)
    y = rng.uniform(-1, 1, (batch_size, *image_shape)).astype(np.float32)
    keras.ops.convert_to_numpy(keras.ops.add(x[:1, :1, :1], 1.0))  # start the TF runtime
    baseline = resident_mb()
    estimate = automap_memory_estimate(
        sinogram_shape, image_shape, fc_layers, batch_size=batch_size, dtype=precision
    )
    model = Automap(
        sinogram_shape,
        image_shape,
        fc_layers,
        refinement={},
        memory_limit=2**62,  # measure, do not refuse
        seed=0,
        dtype=precision,
    )
    model.compile(g_optimizer=keras.optimizers.Adam(1e-4))
    build = peak_mb() - baseline
    step_seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        step_seconds.append(time.perf_counter() - start)
    peak = peak_mb() - baseline
    # The FC layers are named fc0, fc1, ... (kerastrans.nets.Generator).
    params = sum(math.prod(w.shape) for w in model.generator.weights if w.path.startswith("fc"))
    return {
        "method": name,
        "estimate_mb": estimate.bytes / MB,
        "peak_mb": peak,
        "ratio": peak / (estimate.bytes / MB),
        "build_mb": build,
        "params": params,
        "bytes_per_param": peak * MB / params,
        "estimated_params": estimate.parameters,
        "baseline_mb": baseline,
        "step_s": min(step_seconds[1:] or step_seconds),
    }


def measure_in_subprocess(name: str, batch_size: int, steps: int) -> dict:
    """`measure` in a fresh process (its ``ru_maxrss`` is this configuration's alone)."""
    command = [sys.executable, __file__, "--config", name, "--batch-size", str(batch_size),
               "--steps", str(steps)]  # fmt: skip
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


# -- refusal ------------------------------------------------------------------------------------


def refusal_rows() -> list[dict]:
    """Build two configurations over a limit: each must raise before making weights."""
    from kerastrans.models import Automap, automap_memory_estimate
    from kerastrans.models.automap import available_memory  # the model's default limit

    cases = (
        ("refused: 128, 30x183, 2 FC, limit 1 GiB", (30, 183, 1), (128, 128, 1), 2, 2**30),
        ("refused: 512, 1138x727, 1 FC, MemAvailable", (1138, 727, 1), (512, 512, 1), 1, None),
    )
    rows = []
    for method, sinogram_shape, image_shape, fc_layers, limit in cases:
        estimate = automap_memory_estimate(sinogram_shape, image_shape, fc_layers)
        available = limit if limit is not None else available_memory()
        start = time.perf_counter()
        try:
            Automap(sinogram_shape, image_shape, fc_layers, memory_limit=limit)
        except ValueError as error:
            refused, message = 1, str(error)
        else:
            refused, message = 0, "NOT refused"
        seconds = time.perf_counter() - start
        print(f"{method}: {message}")
        rows.append(
            {
                "method": method,
                "estimate_mb": estimate.bytes / MB,
                "limit_mb": available / MB,
                "params": estimate.parameters,
                "refused": refused,
                "seconds": seconds,
            }
        )
    return rows


# -- report -------------------------------------------------------------------------------------


def plot(rows: list[dict], path: Path) -> Path:
    """Estimate and measured peak per configuration (log scale), labelled with the ratio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    measured = [row for row in rows if "peak_mb" in row]
    figure, axis = plt.subplots(figsize=(max(6, 1.1 * len(measured)), 4))
    positions = np.arange(len(measured))
    axis.bar(positions - 0.2, [r["estimate_mb"] for r in measured], 0.4, label="estimate")
    bars = axis.bar(positions + 0.2, [r["peak_mb"] for r in measured], 0.4, label="measured peak")
    axis.bar_label(bars, [f"x{r['ratio']:.2f}" for r in measured], fontsize=8)
    axis.set_xticks(positions, [r["method"] for r in measured], rotation=25, ha="right")
    axis.set_yscale("log")
    axis.set_ylabel("MB over the pre-build baseline (log scale)")
    axis.set_title("AUTOMAP training memory: estimate vs peak (labels: peak / estimate)")
    axis.legend()
    return save_figure(figure, path)


def verdict(rows: list[dict]) -> str:
    """The goal line: ratios of the FC-dominated configurations and the refusals."""
    low, high = RATIO_GOAL
    ratios = [r["ratio"] for r in rows if "peak_mb" in r and r["estimate_mb"] >= DOMINANT_MB]
    refusals = [r["refused"] for r in rows if "refused" in r]
    met = bool(ratios) and all(low <= ratio <= high for ratio in ratios) and all(refusals)
    span = f"{min(ratios):.2f}-{max(ratios):.2f}" if ratios else "none measured"
    return (
        f"goal (peak / estimate in [{low}, {high}] for estimates >= {DOMINANT_MB:.0f} MB, "
        f"over-limit configs refused): {'met' if met else 'NOT met'}: ratios {span}, "
        f"{sum(refusals)}/{len(refusals)} refused"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="training steps per config (3)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per step (4)")
    parser.add_argument("--quick", action="store_true", help="3 small configs, 2 steps")
    parser.add_argument("--config", choices=sorted(CONFIGS), help=argparse.SUPPRESS)  # internal
    args = parser.parse_args(argv)
    if args.config:
        print(json.dumps(measure(args.config, args.batch_size, args.steps)))
        return 0
    from kerastrans.models import automap_memory_estimate
    from kerastrans.models.automap import available_memory  # the model's default limit

    names, steps = (QUICK, 2) if args.quick else (tuple(CONFIGS), args.steps)
    rows = []
    for name in names:
        image, angles, detectors, fc_layers, precision = CONFIGS[name]
        estimate = automap_memory_estimate(
            (angles, detectors, 1), (image, image, 1), fc_layers, args.batch_size, precision
        )
        available = available_memory()
        if available is not None and estimate.bytes > available / 2:
            print(f"{name}: skipped, {estimate} > half of MemAvailable {available / MB:.0f} MB")
            continue
        print(f"{name}: {estimate}", flush=True)
        rows.append(measure_in_subprocess(name, args.batch_size, steps))
    rows += refusal_rows()
    print_table(rows)
    print(verdict(rows))
    if args.quick:
        print(plot(rows, WORK / f"{NAME}-quick" / f"{NAME}.png"))
        return 0
    plot(rows, RESULTS / f"{NAME}.png")
    command = f"python benchmarks/automap_memory.py --steps {steps} --batch-size {args.batch_size}"
    print(write_results(NAME, command, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
