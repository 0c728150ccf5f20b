"""``kerastrans fit``: train a model of `kerastrans.config.MODEL_KINDS` into a run directory."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kerastrans.cli._types import positive_float, positive_int

__all__ = ["PRECISIONS", "SCHEDULES", "STRATEGIES", "add_parser", "build_config"]

#: Choices of --precision, --strategy and --schedule (as kerastrans.precision.AUTO and PRECISIONS,
#: kerastrans.training.STRATEGIES and ScheduleConfig.kind; listed here so that --help
#: needs no TensorFlow).
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("auto", "default", "mirrored", "multiworker")
SCHEDULES = ("constant", "linear", "cosine", "cosine_restarts")

_DESCRIPTION = """\
Train a model on a dataset of kerastrans (see 'kerastrans records' and
'kerastrans simulate') into the run directory --out.

Settings, later ones winning: the defaults of the model (--model), a config
file (--config, YAML or JSON, e.g. the config.yaml of another run), the flags
below, and KEY=VALUE overrides (positional, anywhere, or --set) for any
option of the data pipeline, the networks, the losses and the training, e.g.
  model.generator.depth=5 losses.l1=100 data.augment.rotation=10
  training.schedule.kind=cosine model.discriminator.norm=none

Windows map physical units to [-1, 1]. Without --window/--input-window/
--target-window (or a window in --config), a domain in HU (units recorded
with the dataset, e.g. DICOM Modality CT) gets the CT range -1024..3071 HU,
any other domain the dataset's window hint, else the value range of its
training split. An output domain in HU (the target; both CycleGAN domains)
needs a window covering -1024..3071 HU: a narrower one is refused.

Running the same command again resumes the run exactly where it stopped (also
after kill -9), at the step within the epoch; a finished run is not trained
again unless more --epochs are asked for; another config is refused with the
keys that differ. One fit at a time writes a run directory (a lock file,
RUN_DIR/.lock, released when the process ends); a second one is refused. With
--strategy multiworker every worker runs this same command with its TF_CONFIG;
the run directory must be on a filesystem all workers see, and only the chief
writes to it.
"""


def add_parser(subparsers) -> None:
    """Register ``kerastrans fit``."""
    from kerastrans.config import MODEL_KINDS

    parser = subparsers.add_parser(
        "fit",
        help=f"Train a model ({', '.join(MODEL_KINDS)}) on a dataset.",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", choices=MODEL_KINDS, help="model to train (default pix2pix)")
    parser.add_argument("--data", metavar="DATASET", help="training dataset folder")
    parser.add_argument(
        "--val",
        metavar="DATASET",
        help="validation dataset folder "
        "(default: the training dataset's 'test' split, if it has one)",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="RUN_DIR", help="run directory")
    parser.add_argument("--config", type=Path, metavar="FILE", help="YAML or JSON config file")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.add_argument(
        "--set",
        dest="more_overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override (repeatable)",
    )
    parser.add_argument("--epochs", type=positive_int, help="number of epochs")
    parser.add_argument(
        "--steps-per-epoch",
        type=positive_int,
        metavar="N",
        help="steps per epoch (default: one pass over the training split)",
    )
    parser.add_argument("--batch-size", type=positive_int, metavar="N", help="global batch size")
    parser.add_argument(
        "--crop",
        type=positive_int,
        nargs=2,
        metavar=("H", "W"),
        help="random training patch in pixels (default: whole images)",
    )
    for flag, where in (
        ("--window", "both domains"),
        ("--input-window", "the input domain"),
        ("--target-window", "the target domain"),
    ):
        parser.add_argument(
            flag,
            type=float,
            nargs=2,
            metavar=("BASE", "RANGE"),
            help=f"window of {where} in physical units: [BASE, BASE + RANGE] "
            "-> [-1, 1] (e.g. -1024 4095 for CT in HU)",
        )
    parser.add_argument("--seed", type=int, help="seed of the data stream and the weights")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="default auto: mixed_bfloat16 where the CPU (AVX512-BF16, AMX-BF16) or GPU "
        "computes bfloat16 natively, else float32; config.yaml records the choice",
    )
    parser.add_argument(
        "--g-lr", type=positive_float, metavar="LR", help="generator learning rate (default 2e-4)"
    )
    parser.add_argument(
        "--d-lr",
        type=positive_float,
        metavar="LR",
        help="discriminator learning rate (default 2e-4)",
    )
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help="learning-rate schedule (default constant)",
    )
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="auto",
        help="distribution strategy (default auto: mirrored when several GPUs are visible)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run, parser=parser)


def build_config(args: argparse.Namespace) -> Any:
    """The run's `Config` from the config file, the flags and the overrides.

    Windows left out stay `None`: `kerastrans.training.fit` resolves them from
    the dataset, as it does for a config given to it directly.

    Raises:
        ValueError, TypeError: For a bad file, value or key (the message names it).
    """
    from kerastrans.config import Config, from_dict, read_config_file, with_overrides

    data = read_config_file(args.config) if args.config is not None else {}
    flags = {
        "model.kind": args.model,
        "data.dataset": args.data,
        "data.validation": args.val,
        "training.epochs": args.epochs,
        "training.steps_per_epoch": args.steps_per_epoch,
        "data.batch_size": args.batch_size,
        "data.crop": args.crop,
        "data.seed": args.seed,
        "model.seed": args.seed,
        "model.precision": args.precision,
        "training.g_learning_rate": args.g_lr,
        "training.d_learning_rate": args.d_lr,
        "training.schedule.kind": args.schedule,
        "data.input_window": _window(args.input_window or args.window),
        "data.target_window": _window(args.target_window or args.window),
    }
    for key, value in flags.items():
        if value is not None:
            _set(data, key, value)
    overrides = [*args.overrides, *args.more_overrides]
    return with_overrides(from_dict(Config, data), overrides)


def _run(args: argparse.Namespace) -> int:
    from kerastrans.errors import DataError
    from kerastrans.training import ConfigError, fit, make_strategy

    parser = args.parser
    try:
        strategy = make_strategy(args.strategy)  # first: MultiWorkerMirroredStrategy needs it
        config = build_config(args)
    except DataError:
        raise
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    if config.data.dataset is None:
        parser.error("--data is required (or data.dataset in --config)")

    def resuming(checkpoint) -> None:
        print(
            f"resuming {args.out} at epoch {checkpoint.epoch + 1}, step {checkpoint.step} "
            f"(global step {checkpoint.global_step})",
            flush=True,
        )

    try:
        result = fit(
            config,
            args.out,
            strategy=strategy,
            progress=not args.no_progress,
            on_resume=resuming,
        )
    except ConfigError as error:
        parser.error(str(error))
    if result.already_finished:
        print(
            f"{args.out}: already finished ({result.epochs} epochs, {result.global_step} "
            "steps): nothing to train; ask for more --epochs to continue"
        )
        return 0
    print(
        f"trained {result.trained_steps} steps: {result.epochs} epochs of "
        f"{result.config.training.steps_per_epoch} steps are done"
    )
    for name in ("model.keras", "history.csv", "grids", "logs", "config.yaml"):
        if (args.out / name).exists():
            print(f"  {args.out / name}")
    return 0


def _set(data: dict, key: str, value: Any) -> None:
    """Set the dotted ``key`` in the nested dict ``data``, creating sections."""
    *parents, leaf = key.split(".")
    for part in parents:
        data = data.setdefault(part, {})
        if not isinstance(data, dict):
            raise ValueError(f"{key}: {part!r} is not a config section")
    data[leaf] = value


def _window(value) -> dict[str, float] | None:
    """``{"base", "range"}`` of a ``--window BASE RANGE`` pair (`None` stays `None`)."""
    if value is None:
        return None
    base, width = value
    return {"base": float(base), "range": float(width)}
