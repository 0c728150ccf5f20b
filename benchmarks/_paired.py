"""What the paired pix2pix benchmarks share (``lowdose.py``, ``superres.py``).

Both train `kerastrans.models.Pix2Pix` on simulated random-ellipse phantoms in
HU and score it, with `kerastrans.evaluate.evaluate` and ``baseline="input"``,
on held-out phantoms and on the real CT slices of pydicom/pydicom-data, none
seen in training:

- phantoms (`phantoms_hu`): dival's random ellipses, rendered on a grid twice
  as fine and block-averaged (edges get partial-volume values, as a
  scanner's detector averages them, not point-sampled staircases), then
  mapped to HU: background -1000 (air), the brightest structure drawn per
  phantom between 0 HU (water) and +1500 HU (dense bone), the span of the
  real slices;
- data sets are written once under the work folder and reused; one built
  with other settings is refused (``_training.build_dataset``, re-exported
  here), as `fit` refuses a run with another config;
- runs (`pix2pix_config`): the default generator (U-Net, 4 levels, 32 to 256
  channels, no normalisation), Adam 5e-4 with a cosine decay (the demo's
  2e-3 collapsed the L1-only runs to a constant output within the first
  epoch: training L1 0.14 -> 0.31, validation frozen), random crops with
  flips, one window ``[-1024, 3071]`` HU (the CT range) for input and target, validation
  on the ``validation`` split only, whose best epoch (``training.keep_best=val_psnr``)
  gives the model that is scored (lowdose's L1 + adversarial run, before this, peaked at
  34.4 dB validation PSNR in epoch 10 and ended diverged at 20.8 dB on the test phantoms).
  `train_runs` resumes them through ``_training.train``; asking for more
  ``--epochs`` later continues a finished run;
- scores (`score_runs`): mean PSNR/SSIM (data range max - min of each ground
  truth, as dival) and RMSE in HU of the input and of each model, per test
  group; `finish` prints them with the goals, saves the figure (sample
  images side by side and a PSNR bar chart) and, on a full run, the JSON.

Scripts import this module as ``import _paired as paired``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import shlex
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from _common import RESULTS, merge_rows, print_table, save_figure, write_results
from _training import add_work_arguments, build_dataset, train, train_timing

if TYPE_CHECKING:
    from kerastrans.config import Config

__all__ = [
    "REAL",
    "SPLITS",
    "WINDOW",
    "Scores",
    "TrainSettings",
    "build_dataset",
    "finish",
    "parse_arguments",
    "phantoms_hu",
    "pix2pix_config",
    "real_ct",
    "score_runs",
    "train_runs",
]

#: Window of inputs and targets in HU, (base, range): the CT range -1024..3071 HU, which
#: `fit` requires of outputs in HU (the real slices reach ~+1900 HU).
WINDOW = (-1024.0, 4095.0)
#: Seeds of the phantoms of each split (dival's generator: train, validation, test differ).
SEEDS = {"train": 1000, "validation": 1001, "test": 1002}
#: Brightest structure of a phantom, HU: uniform in this range (water to dense bone).
PEAK_HU = (0.0, 1500.0)
#: Test splits of every dataset: held-out phantoms, real CT slices.
SPLITS = ("test", "real_ct")
#: Prefix of the rows of the real CT slices.
REAL = "real-ct "


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """How each run trains: ``epochs x steps_per_epoch`` steps of ``batch_size`` crops.

    ``residual``: the U-Net adds its input to its output (linear output): it
    learns the correction of the input (``model.generator.residual_output``).
    """

    epochs: int
    steps_per_epoch: int
    batch_size: int
    crop: int
    residual: bool = False

    @property
    def steps(self) -> int:
        """Optimizer steps of the whole run."""
        return self.epochs * self.steps_per_epoch


def phantoms_hu(count: int, split: str, size: int) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(id, image)``: ``count`` random-ellipse phantoms of ``size`` pixels in HU.

    Rendered at ``2 * size`` and averaged over 2 x 2 blocks (partial volume);
    ``-1000 + (peak + 1000) * v`` HU for dival's values ``v`` in [0, 1], with
    ``peak`` uniform in `PEAK_HU`. Seeded per split (`SEEDS`), so the splits
    never share a phantom.
    """
    from skimage.transform import downscale_local_mean

    from kerastrans.tomo.phantoms import random_ellipses

    peaks = np.random.default_rng(SEEDS[split]).uniform(*PEAK_HU, count)
    images = random_ellipses(count, SEEDS[split], shape=(2 * size, 2 * size))
    for index, (image, peak) in enumerate(zip(images, peaks, strict=True)):
        hu = -1000.0 + (peak + 1000.0) * downscale_local_mean(image, (2, 2))
        yield f"phantom-{split}-{index:04d}", hu.astype(np.float32)


def real_ct(size: int) -> Iterator[tuple[str, np.ndarray, tuple[float, float]]]:
    """Yield ``(name, image in HU, extent in mm)`` of every real CT slice of pydicom/pydicom-data.

    The five slices of `kerastrans.data.recipes.pydicom_ct.FILES` (both of
    its splits: the benchmarks never train on real data), averaged to about
    ``size`` pixels and floored at air (`real_ct_slices`).
    """
    from kerastrans.data.recipes.pydicom_ct import FILES, real_ct_slices

    yield from real_ct_slices([name for files in FILES.values() for name in files], size)


def pix2pix_config(
    dataset: Path,
    settings: TrainSettings,
    losses: Mapping[str, float],
    precision: str = "auto",
) -> Config:
    """The `kerastrans.config.Config` of one run on ``dataset`` (see the module docstring).

    ``precision``: ``model.precision`` (``"auto"``: mixed bfloat16 where the CPU has it).
    """
    from kerastrans.config import Config, DataConfig, ModelConfig, TrainingConfig, Window

    window = Window(*WINDOW)
    generator = {"residual_output": True, "out_activation": "none"} if settings.residual else {}
    return Config(
        data=DataConfig(
            dataset=str(Path(dataset).resolve()),
            eval_split="validation",
            input_window=window,
            target_window=window,
            augment={"flip_left_right": True, "flip_up_down": True},
            batch_size=settings.batch_size,
            crop=(settings.crop, settings.crop),
            seed=0,
        ),
        model=ModelConfig(generator=generator, precision=precision),
        training=TrainingConfig(
            epochs=settings.epochs,
            steps_per_epoch=settings.steps_per_epoch,
            g_learning_rate=5e-4,
            schedule={"kind": "cosine"},
            checkpoint_every=100,
            keep_best="val_psnr",
        ),
        losses=dict(losses),
    )


def train_runs(configs: Mapping[str, Config], work: Path) -> dict[str, Path]:
    """Train (or resume, or reuse) each config into ``<work>/runs/<name>``; return the runs."""
    logging.getLogger("absl").setLevel(logging.ERROR)  # TFDS deprecation notices, once per read
    runs = {}
    for name, config in configs.items():
        print(f"\n== training {name}", flush=True)
        runs[name] = train(config, work / "runs" / re.sub(r"[^\w.-]+", "_", name))
    return runs


def _evaluate_runs(runs: Mapping[str, tuple[Path, Path]]) -> dict[str, dict[str, Any]]:
    """Evaluate each run's translator on the `SPLITS` of its dataset, the input as baseline.

    Returns:
        ``{split: {name: EvaluationReport}}`` (`kerastrans.evaluate.evaluate`),
        each keeping its first example as a sample.
    """
    from kerastrans.evaluate import evaluate
    from kerastrans.runs import load_run

    reports: dict[str, dict[str, Any]] = {split: {} for split in SPLITS}
    for name, (run_dir, dataset) in runs.items():
        translator = load_run(run_dir).translator()
        for split in SPLITS:
            reports[split][name] = evaluate(
                translator, dataset, split, baseline="input", num_samples=1, progress=False
            )
    return reports


@dataclasses.dataclass
class Scores:
    """Rows and sample images of some runs on both test groups (see `score_runs`)."""

    phantom_rows: list[dict]
    real_rows: list[dict]
    panels: list[tuple[str, dict[str, np.ndarray]]]


def score_runs(
    runs: Mapping[str, tuple[Path, Path]],
    baseline: str,
    steps: int,
    *,
    label: str = "",
    input_keys: Mapping[str, float] | None = None,
    model_keys: Mapping[str, float] | None = None,
) -> Scores:
    """Score runs of one dataset on its held-out phantoms (``test``) and real slices (``real_ct``).

    Args:
        runs: ``{name: (run directory, dataset)}``, all with the same dataset.
        baseline: Row name of the input (the low-dose or bicubic image).
        steps: Optimizer steps of each run.
        label: Added to the panel labels of the figure (e.g. ``", x2"``).
        input_keys: Extra keys of the input rows (e.g. ``photons``).
        model_keys: Extra keys of the model rows (e.g. ``train_images``).

    Returns:
        The `Scores`: rows ``[baseline, *runs]`` per group, the real slices'
        prefixed `REAL`, each with ``psnr``, ``ssim``, ``rmse_hu``,
        ``n_test``; the models' also with ``gain_db`` (PSNR over the input),
        ``train_hours``, ``train_steps``, ``ms_per_step`` (wall time of a
        training step, validation included), ``cpu_steal`` (the hypervisor's
        share of the CPU meanwhile), ``precision`` (the one the
        run trained in, as its ``config.yaml`` records it) and ``model`` (the
        file scored: the best validation epoch's). Panels: the first example of each
        group, input, each model's output and the target.
    """
    from kerastrans.runs import model_source

    reports = _evaluate_runs(runs)
    groups = []
    for split, prefix in zip(SPLITS, ("", REAL), strict=True):
        first = next(iter(reports[split].values()))
        rows = [{"method": prefix + baseline, **_means(first, "input"), **(input_keys or {})}]
        for name, report in reports[split].items():
            means = _means(report, "model")
            rows.append({
                "method": prefix + name,
                **means,
                "gain_db": means["psnr"] - rows[0]["psnr"],
                **train_timing(runs[name][0], steps),
                "train_steps": steps,
                "precision": _precision(runs[name][0]),
                "model": model_source(runs[name][0]),
                **(model_keys or {}),
            })  # fmt: skip
        groups.append(rows)
    panels = [
        (f"{group}{label}", _sample_images(reports[split], baseline))
        for split, group in zip(SPLITS, ("held-out phantom", "real CT"), strict=True)
    ]
    return Scores(*groups, panels)


def _precision(run_dir: Path) -> str:
    """The precision a run trained in (``auto`` resolved when the run started)."""
    from kerastrans.config import load_config

    return load_config(Path(run_dir) / "config.yaml").model.precision


def _sample_images(reports: Mapping[str, Any], baseline: str) -> dict[str, np.ndarray]:
    """The first sample of a split: ``{baseline: input, <run>: output, ..., "target": target}``."""
    first = next(iter(reports.values())).samples[0]
    outputs = {name: report.samples[0].output for name, report in reports.items()}
    return {baseline: first.input, **outputs, "target": first.target}


def _means(report: Any, method: str) -> dict:
    means = report.means()[method]
    return {
        "psnr": means["psnr"],
        "ssim": means["ssim"],
        "rmse_hu": means["rmse"],
        "n_test": len(report.ids),
    }


def finish(
    name: str,
    scores: Sequence[Scores],
    goals: Mapping[str, float],
    title: str,
    *,
    work: Path,
    quick: bool,
    argv: Sequence[str] | None,
    order: Sequence[str] = (),
) -> list[dict]:
    """Print the table and the goals, save the figure and, on a full run, the results JSON.

    Args:
        name: The benchmark's name (``benchmarks/results/<name>.json`` and ``.png``).
        scores: What `score_runs` returned, in row order.
        goals: Least PSNR gain over the input (dB) of some models on the
            held-out phantoms, by row name; the other gains are printed as such.
        title: Title of the bar chart.
        work: The work folder: a ``--quick`` run saves its figure there and
            writes nothing to ``benchmarks/results``.
        quick: Whether this is a ``--quick`` run.
        argv: The arguments, for the ``command`` of the JSON (`None`: ``sys.argv[1:]``).
        order: With ``--methods``: every row name in JSON order; the previous
            JSON's rows of runs this run did not make are kept (`merge_rows`).

    Returns:
        All rows: the phantom rows, then the real-slice rows (merged with the
        kept ones when ``order`` is given and this is not a quick run).
    """
    phantom_rows = [row for score in scores for row in score.phantom_rows]
    real_rows = [row for score in scores for row in score.real_rows]
    rows = phantom_rows + real_rows
    print(f"\n== {name}: PSNR/SSIM (data range max - min of each ground truth), RMSE in HU")
    print_table(rows, ["method", "psnr", "ssim", "rmse_hu", "gain_db", "n_test", "train_hours"])
    for row in phantom_rows:
        if row["method"] in goals:
            goal, gain = goals[row["method"]], row["gain_db"]
            state = "met" if gain >= goal else "NOT met"
            print(f"goal {row['method']} on the held-out phantoms: at least {goal:+.1f} dB over "
                  f"the input, measured {gain:+.2f} dB: {state}")  # fmt: skip
    others = [row for row in rows if "gain_db" in row and row["method"] not in goals]
    print("not goals: " + ", ".join(f"{row['method']} {row['gain_db']:+.2f} dB" for row in others))

    if order and not quick:
        rows, kept = merge_rows(rows, RESULTS / f"{name}.json", order)
        if kept:
            print(f"rows kept from the previous results (not re-run): {', '.join(kept)}")
    # The bars show every row of the results (kept ones too); the images, this run's models.
    bars = {
        group: {
            row["method"].removeprefix(REAL): row["psnr"]
            for row in rows
            if row["method"].startswith(REAL) == real
        }
        for group, real in (("held-out phantoms", False), ("real CT", True))
    }
    panels = [panel for score in scores for panel in score.panels]
    print(_plot((work if quick else RESULTS) / f"{name}.png", panels, bars, title))
    if quick:
        return rows
    arguments = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(["python", f"benchmarks/{name}.py", *arguments])
    print(write_results(name, command, rows))
    return rows


def _plot(
    path: Path,
    panels: Sequence[tuple[str, Mapping[str, np.ndarray]]],
    bars: Mapping[str, Mapping[str, float]],
    title: str,
) -> Path:
    """Save sample images side by side (one row per panel) and a grouped PSNR bar chart.

    Args:
        path: PNG to write.
        panels: ``(label, {column title: H x W(x 1) image in HU})``; the last
            column is the target, whose range sets the grey scale of the row.
        bars: ``{group: {method: PSNR in dB}}``.
        title: Title of the bar chart.
    """
    import matplotlib.pyplot as plt

    columns = max(len(images) for _, images in panels)
    figure = plt.figure(figsize=(2.4 * columns + 6, 2.4 * len(panels)), layout="constrained")
    grid = figure.add_gridspec(len(panels), columns + 3)
    for row, (label, images) in enumerate(panels):
        target = np.squeeze(list(images.values())[-1])
        low, high = float(target.min()), float(target.max())
        for column, (name, image) in enumerate(images.items()):
            axis = figure.add_subplot(grid[row, column])
            axis.imshow(np.squeeze(image), cmap="gray", vmin=low, vmax=high)
            axis.set_axis_off()
            axis.set_title(f"{label}\n{name}" if column == 0 else name, fontsize=8)
    axis = figure.add_subplot(grid[:, columns:])
    methods = list(dict.fromkeys(method for values in bars.values() for method in values))
    width = 0.8 / len(methods)
    for index, method in enumerate(methods):
        groups = [group for group, values in bars.items() if method in values]
        positions = [list(bars).index(group) + index * width for group in groups]
        drawn = axis.bar(positions, [bars[g][method] for g in groups], width, label=method)
        axis.bar_label(drawn, fmt="%.1f", fontsize=7)
    axis.set_xticks([i + 0.4 - width / 2 for i in range(len(bars))], list(bars), fontsize=8)
    values = [value for group in bars.values() for value in group.values()]
    axis.set_ylim(min(values) - 3, max(values) + 2)
    axis.set_ylabel("PSNR (dB)")
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=7)
    return save_figure(figure, path)


def parse_arguments(
    name: str,
    description: str,
    full: Any,
    quick: Any,
    argv: Sequence[str] | None,
    methods: Sequence[str] = (),
) -> tuple[Any, Path, bool, list[str]]:
    """Parse ``--work``, ``--quick``, ``--epochs``, ``--train-images``, ``--crop``, ``--residual``.

    With ``methods`` (the script's run names), also ``--methods``: the runs to
    train and score (default all); `finish` keeps the other runs' rows of the
    previous JSON.

    Args:
        name: The benchmark's name (default work folder ``benchmarks/work/<name>``).
        description: Help text.
        full: The script's default settings (with ``phantoms`` and a `TrainSettings` ``train``).
        quick: The settings of ``--quick``.
        argv: Arguments (`None`: ``sys.argv[1:]``).
        methods: Run names ``--methods`` chooses from (none: no such option).

    Returns:
        ``(settings, work folder, quick, methods)``: with ``--quick``, ``quick``
        and ``<work>-quick``; else ``full`` with the epochs and training
        phantoms asked for; the runs chosen, in the order of ``methods``.
    """
    parser = argparse.ArgumentParser(description=description)
    add_work_arguments(parser, name)
    steps = full.train.steps_per_epoch
    parser.add_argument(
        "--epochs",
        type=int,
        default=full.train.epochs,
        help=f"epochs of {steps} steps per run (default {full.train.epochs}); more epochs "
        "later continue the finished runs in the same --work",
    )
    parser.add_argument(
        "--train-images",
        type=int,
        default=full.phantoms[0],
        help=f"training phantoms (default {full.phantoms[0]}; another number needs another --work)",
    )
    parser.add_argument(
        "--crop",
        type=int,
        default=full.train.crop,
        help=f"side of the training crops in pixels (default {full.train.crop}; at most the "
        "image size, which trains on whole images)",
    )
    parser.add_argument(
        "--residual",
        action="store_true",
        help="the U-Nets learn a correction of their input (residual output, linear)",
    )
    if methods:
        parser.add_argument(
            "--methods",
            nargs="+",
            choices=list(methods),
            default=list(methods),
            help="runs to train and score (default all); the others' rows of the previous "
            "results JSON are kept",
        )
    args = parser.parse_args(argv)
    chosen = [method for method in methods if method in args.methods] if methods else []
    if args.quick:
        quick = dataclasses.replace(
            quick, train=dataclasses.replace(quick.train, residual=args.residual)
        )
        return quick, Path(f"{args.work}-quick"), True, chosen
    train = dataclasses.replace(
        full.train, epochs=args.epochs, crop=args.crop, residual=args.residual
    )
    phantoms = (args.train_images, *full.phantoms[1:])
    return dataclasses.replace(full, phantoms=phantoms, train=train), args.work, False, chosen
