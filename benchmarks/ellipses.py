"""Reconstruction on the dival "ellipses" protocol: FBP against five learned methods.

Usage::

    python benchmarks/ellipses.py [--n-test 1000] [--n-validation 200] [--train-images 4000]
        [--steps N | --steps lpd=8000 automap=400 ...] [--methods fbp lpd ...]
        [--work DIR] [--quick]

Protocol. Builds the first ``--n-test`` test and ``--n-validation``
validation samples of the protocol (`kerastrans.tomo.ellipses.EllipsesProtocol`,
timed), runs every method of ``--methods`` (`_ellipses_methods.METHODS`) and
scores its test reconstructions as dival does (PSNR/SSIM with the data range
of each ground truth), on all test images and on the first 100 (the published
figures use 100). Nothing is tuned on test data:

- ``fbp``: Hann filter, frequency scaling grid-searched on the validation samples;
- ``automap``: ``kerastrans fit --model automap`` started at the tuned FBP
  (``model.fbp_init``: one linear FC layer, sinogram -> 128 x 128 grid, then
  the U-Net of ``fbp+unet``, a correction that starts at zero), L2 loss, the
  FC layer learning at 0.02 x the convolutions' rate
  (``model.fc_learning_rate_scale``);
- ``fbp+unet``: ``--model fbp-unet``: the tuned FBP inside the network, then
  pix2pix's U-Net, L2 loss;
- ``fbp+unet+adv``: the same with a PatchGAN (L1 x 100 + adversarial x 1);
- ``lgd``: ``--model lgd``, learned gradient descent (Adler & Oktem 2017), L2;
- ``lpd``: ``--model lpd``, learned primal-dual (Adler & Oktem 2018), L2;
  both with Adam's beta_2 0.99 and the gradient clipped to norm 1
  (``training.clip_norm``), as Adler & Oktem train learned primal-dual.

Every network takes the noisy sinograms of the first ``--train-images``
samples of the train split, validates on the first 64 validation samples (the
model of the best validation PSNR reconstructs the test images) and
trains for its ``--steps`` (defaults `_ellipses_methods.BUDGETS`, a short
run) in the precision ``--precision auto`` picks (mixed bfloat16 where the
CPU computes it natively; the run's ``config.yaml`` records it).
Rows report ``psnr``, ``ssim``, ``n_test``, ``train_images`` and
``train_hours`` (cumulative over resumed sessions; for ``fbp`` the tuning
time), plus ``psnr_first100``/``ssim_first100``, ``steps``, ``batch_size``,
``ms_per_step`` (training wall time per step, validation and checkpoints
included), ``cpu_steal`` (the share of the CPU time the hypervisor took
meanwhile: the hours of a run with much steal are not this CPU's own),
``precision`` and ``parameters`` (AUTOMAP: ``fc_parameters`` and
``fc_memory_gib``, the model's own training-memory estimate of its FC layer).

Resuming. Datasets and runs live under ``--work`` (default
``benchmarks/work/ellipses``): re-running the same command reuses the
datasets, resumes an interrupted training and reuses finished ones; more
``--steps`` later continue a finished run (its cosine schedule stretched over
the new length). Another ``--train-images`` builds its own datasets and runs
in the same folder. The long runs train one method per command, each within
2 hours (``--train-images 16000 --work benchmarks/work/ellipses-2h``, e.g.
``--methods lpd --steps lpd=8000``); `benchmarks/README.md` has the commands
as they were run and on which machine.

Results. ``benchmarks/results/ellipses.json`` (and ``.png``: test samples
side by side and a PSNR bar chart against the published figures) are written
by a full run only. With ``--methods`` a run rewrites the rows of the methods
it ran and keeps the other methods' rows from the previous JSON as they were
(each keeps its own ``n_test`` and ``train_images``; the JSON's ``command`` is
the last run's). ``--quick`` checks the whole chain on tiny sizes (a few
steps, 8 test images) in ``<work>-quick`` and writes nothing to results/.

Published (Baguer, Leuschner & Schmidt, Inverse Problems 36, 2020; 100 test
images, 32,000 training images): FBP 24.18 dB, iRadonMap 28.02, FBP + U-Net
29.36, learned gradient descent 30.30, learned primal-dual 32.27. Goals: our
FBP within 0.7 dB of the published one (the build is faithful); AUTOMAP above
iRadonMap; FBP + U-Net above 29.36 dB; LGD above 30.3 dB; LPD at least 31 dB;
each network within 2 hours of training on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from pathlib import Path

from _common import RESULTS, merge_rows, print_table, save_figure, write_results
from _ellipses_methods import BUDGETS, METHODS, Data, Result, Settings, build_data
from _training import add_work_arguments

from kerastrans.metrics import evaluate

NAME = "ellipses"
#: Published figures on the first 100 test images (Baguer et al. 2020), by our row they
#: are compared with: ``(published method, PSNR dB, SSIM or None, goal)``; a goal row must
#: beat it (or reach `GOAL_DB`).
PUBLISHED = {
    "fbp": ("FBP", 24.18, 0.594, False),
    "automap": ("iRadonMap", 28.02, 0.877, True),
    "fbp+unet": ("FBP + U-Net", 29.36, 0.899, True),
    "lgd": ("learned gradient descent", 30.30, None, True),
    "lpd": ("learned primal-dual", 32.27, 0.940, True),
}
#: Goals other than "above the published figure": PSNR (dB) on the first 100 test images.
GOAL_DB = {"lpd": 31.0}
#: The best published method, drawn as a line in the bar chart.
LEARNED_PRIMAL_DUAL = 32.27
#: How far our FBP may land from the published one for the build to count as faithful.
FAITHFUL_DB = 0.7
#: The training budget of each learned method, hours.
BUDGET_HOURS = 2.0
#: Columns of the printed table of the methods.
COLUMNS = (
    "method", "psnr", "ssim", "n_test", "psnr_first100", "ssim_first100", "train_images",
    "train_hours", "steps", "batch_size", "ms_per_step", "cpu_steal", "precision", "parameters",
    "seconds",
)  # fmt: skip


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


def verdicts(rows: list[dict]) -> list[str]:
    """One line per row with a published figure: ours on the first 100 vs published."""
    lines = []
    for row in rows:
        if row["method"] not in PUBLISHED:
            continue
        label, psnr, ssim, goal = PUBLISHED[row["method"]]
        gap = row["psnr_first100"] - psnr
        if row["method"] in GOAL_DB:
            least = GOAL_DB[row["method"]]
            state = "met" if row["psnr_first100"] >= least else "NOT met"
            verdict = f"goal: at least {least:.1f} dB: {state}"
        elif goal:
            state = "met" if gap > 0 else "NOT met"
            verdict = f"goal: above {label}: {state}"
        else:
            state = "faithful" if abs(gap) <= FAITHFUL_DB else "NOT faithful"
            verdict = f"{state}, tolerance {FAITHFUL_DB} dB"
        lines.append(
            f"{row['method']}: first 100 test images {row['psnr_first100']:.2f} dB / "
            f"{row['ssim_first100']:.3f} ({row['n_test']} images: {row['psnr']:.2f} dB / "
            f"{row['ssim']:.3f}) vs published {label} {psnr:.2f} dB"
            + ("" if ssim is None else f" / {ssim:.3f}")
            + f" ({gap:+.2f} dB; {verdict})"
        )
    return lines


def plot(data: Data, results: dict[str, Result], rows: list[dict], path: Path) -> Path:
    """Test samples (ground truth and each method run) and a PSNR bar chart vs published."""
    import matplotlib.pyplot as plt

    samples = range(min(3, len(data.test_targets)))
    columns = 1 + len(results)
    figure = plt.figure(figsize=(2.3 * columns + 7, 2.3 * len(samples)), layout="constrained")
    grid = figure.add_gridspec(len(samples), columns + 3)
    for row, index in enumerate(samples):
        images = {"ground truth": data.test_targets[index]}
        images.update({name: result.reconstructions[index] for name, result in results.items()})
        for column, (title, image) in enumerate(images.items()):
            axis = figure.add_subplot(grid[row, column])
            axis.imshow(image.T, cmap="gray", vmin=0, vmax=1, origin="lower")
            axis.set_axis_off()
            axis.set_title(f"{title} #{index}", fontsize=8)
    bars = figure.add_subplot(grid[:, columns:])
    labels, values, colours = [], [], []
    for r in (r for r in rows if "psnr_first100" in r):
        labels += [f"{r['method']}\n(ours, 100)", f"{r['method']}\n(ours, {r['n_test']})"]
        values += [r["psnr_first100"], r["psnr"]]
        colours += ["C0", "C0"]
        if r["method"] in PUBLISHED:
            label, psnr, *_ = PUBLISHED[r["method"]]
            labels.append(f"{label}\n(published, 100)")
            values.append(psnr)
            colours.append("C1")
    drawn = bars.bar(range(len(values)), values, color=colours)
    bars.bar_label(drawn, fmt="%.2f", fontsize=7)
    bars.axhline(LEARNED_PRIMAL_DUAL, color="C2", linestyle="--", linewidth=1)
    bars.text(0, LEARNED_PRIMAL_DUAL + 0.2, "learned primal-dual (published)", fontsize=7)
    bars.set_xticks(range(len(values)), labels, fontsize=6, rotation=45, ha="right")
    bars.set_ylim(min(values) - 2, max(*values, LEARNED_PRIMAL_DUAL) + 1.5)
    bars.set_ylabel("PSNR (dB)")
    bars.set_title("ellipses test set")
    return save_figure(figure, path)


def parse_steps(values: list[str] | None, methods: list[str]) -> dict[str, int]:
    """``--steps``: one count for every learned method, or ``method=count`` pairs.

    Raises:
        SystemExit: (argparse style) for an unknown method or a count < 1.
    """
    steps = {name: budget.steps for name, budget in BUDGETS.items()}
    for value in values or []:
        name, _, count = value.rpartition("=")
        names = [name] if name else [m for m in methods if m in BUDGETS]
        if any(n not in BUDGETS for n in names) or not count.isdigit() or int(count) < 1:
            raise SystemExit(
                f"--steps takes N or METHOD=N with METHOD in {sorted(BUDGETS)} and N >= 1, "
                f"got {value!r}"
            )
        steps.update(dict.fromkeys(names, int(count)))
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-test", type=int, default=1000, help="test images (default 1000)")
    parser.add_argument("--n-validation", type=int, default=200, help="validation images")
    parser.add_argument(
        "--train-images", type=int, default=4000, help="train samples of the networks (4000)"
    )
    parser.add_argument(
        "--steps",
        nargs="+",
        metavar="[METHOD=]N",
        help="training steps: N for every network, or METHOD=N "
        + ", ".join(f"(default {m}={b.steps})" for m, b in BUDGETS.items()),
    )
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    add_work_arguments(parser, NAME)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    methods = [m for m in METHODS if m in args.methods]
    steps = parse_steps(args.steps, methods)
    budgets = {name: dataclasses.replace(b, steps=steps[name]) for name, b in BUDGETS.items()}
    settings = Settings(args.work, args.train_images, budgets)
    n_test, n_validation = args.n_test, args.n_validation
    if args.quick:
        n_test, n_validation = 8, 16
        budgets = {n: dataclasses.replace(b, steps=2, batch_size=2) for n, b in budgets.items()}
        settings = Settings(Path(f"{args.work}-quick"), 16, budgets, validation_images=4)

    data, build_row = build_data(n_validation, n_test)
    rows, results = [], {}
    for name in methods:
        begin = time.perf_counter()
        results[name] = METHODS[name](data, settings)
        rows.append(score(name, results[name], data, time.perf_counter() - begin))
    hours = (time.perf_counter() - start) / 3600.0
    trained = sum(r["train_hours"] for r in rows if r["method"] != "fbp" and "train_hours" in r)
    timing = [build_row, {"method": "wall-time", "hours": hours, "train_hours": trained}]
    rows += timing

    folder = settings.work if args.quick else RESULTS
    order = [*METHODS, "build-test-data", "wall-time"]
    merged, kept = (rows, []) if args.quick else merge_rows(rows, RESULTS / f"{NAME}.json", order)
    print()
    print_table([r for r in merged if r["method"] in METHODS], COLUMNS)
    for row in timing:
        print()
        print_table([row])
    if kept:
        print(f"\nrows kept from the previous results (not re-run): {', '.join(kept)}")
    print()
    print("\n".join(verdicts(rows)))
    print(f"wall time of this command: {hours:.2f} h (training, summed: {trained:.2f} h)")
    for row in rows:
        if row["method"] in METHODS and row["method"] != "fbp":
            state = "met" if row["train_hours"] <= BUDGET_HOURS else "NOT met"
            steal = row.get("cpu_steal")
            stolen = f", {steal:.0%} of the CPU stolen by the hypervisor" if steal else ""
            print(
                f"{row['method']}: {row['train_hours']:.2f} h of training (summed over resumed "
                f"sessions, in {row.get('precision', '?')}{stolen}); goal: within "
                f"{BUDGET_HOURS:.0f} h: {state}"
            )
    folder.mkdir(parents=True, exist_ok=True)
    figure = plot(data, results, merged, folder / f"{NAME}.png")
    print(f"figure: {figure}")
    if not args.quick:
        arguments = sys.argv[1:] if argv is None else list(argv)
        command = shlex.join(["python", f"benchmarks/{NAME}.py", *arguments])
        print(f"results: {write_results(NAME, command, merged)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
