"""``kerastrans records``: build a TFDS-format dataset from DICOM/PNG/TIFF/NPY files."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

__all__ = ["RECIPES", "add_parser", "parse_split"]

#: Names of `kerastrans.data.recipes.RECIPES` (listed here so that --help needs no TensorFlow).
RECIPES = ("pydicom_ct", "shapes")

_DESCRIPTION = """\
Build a dataset of float32 slices in physical units (HU for CT) in the TFDS
format (TFRecord shards + features.json + dataset_info.json), readable with
tfds.builder_from_directory and streamed by the kerastrans pipeline.

Sources (choose one):
  SOURCE --paired     SOURCE/trainA + SOURCE/trainB (and testA/testB, ...)
                      paired by relative path without extension
  SOURCE --unpaired   the same folders as independent domains (CycleGAN):
                      splits trainA, trainB, testA, testB
  --pairs LIST        a tab-separated list file: input path(s), then the
                      target path, per line (relative to the list's folder);
                      extra columns are extra input channels; split 'train'
  SOURCE              a plain folder of images or DICOM series: every slice
                      with input = target (for denoising with noise injection,
                      or as a clean source); DICOM series are stored in
                      slice order so that 2.5D stacks work; split 'train'
  --recipe NAME       a reproducible dataset of the project (shapes,
                      pydicom_ct); see datasets/ in the repository

Input and target may differ in size (super-resolution, sinogram -> image).
Each domain must hold one DICOM Modality (or only non-DICOM files), and the
images of one split one number of channels; the DICOM Modality is recorded,
so that 'fit' knows which domains are CT in HU.
A finished dataset at --out is left untouched unless --overwrite is given;
an interrupted build leaves nothing at --out. The summary printed at the end
gives, per split, the number of examples, the shapes and min/max/mean values.
"""

_SPLIT_HELP = """\
which splits to write, comma-separated: a source split name keeps that split
(folders: 'train' = trainA/trainB, 'test' = testA/testB; a list file or plain
folder is 'train'); NAME=FRACTION moves that random fraction of the train
examples into a new split NAME, whole groups at a time: a DICOM series
(SeriesInstanceUID) never lands in two splits; any other file (PNG, TIFF,
NPY) is its own group, all its frames together. Seeded by --seed; the share
reached is printed (it may differ from FRACTION when series are large). A
bare FRACTION means validation=FRACTION. Default: every source split.
Examples: --split 0.1, --split train,test,validation=0.2
"""


def add_parser(subparsers) -> None:
    """Register ``kerastrans records``."""
    parser = subparsers.add_parser(
        "records",
        help="Build a TFDS-format dataset from DICOM/PNG/TIFF/NPY files.",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "source",
        nargs="?",
        metavar="SOURCE",
        type=Path,
        help="folder of images (see above); omit with --pairs or --recipe",
    )
    parser.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="dataset folder to create"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--pairs", type=Path, metavar="LIST", help="tab-separated list file")
    mode.add_argument("--paired", action="store_true", help="SOURCE has trainA/trainB folders")
    mode.add_argument(
        "--unpaired",
        action="store_true",
        help="SOURCE has trainA/trainB folders of two independent domains",
    )
    mode.add_argument(
        "--recipe",
        choices=RECIPES,
        metavar="NAME",
        help=f"build a project dataset: {', '.join(RECIPES)}",
    )
    parser.add_argument("--split", type=parse_split, metavar="SPEC", help=_SPLIT_HELP)
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of random splits and recipes (default: 0)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing dataset at --out"
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="hide progress bars"
    )
    parser.set_defaults(func=run, parser=parser)


def parse_split(text: str) -> tuple[tuple[str, ...], dict[str, float]]:
    """Parse ``--split``: ``(kept source splits, {new split: fraction})``.

    >>> parse_split("train,test,validation=0.2")
    (('train', 'test'), {'validation': 0.2})
    >>> parse_split("0.1")
    ((), {'validation': 0.1})
    """
    kept: list[str] = []
    held: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.rpartition("=")
        if not sep:
            name, value = ("validation", item) if _is_number(item) else (item, "")
        if value:
            if not (_is_number(value) and 0 < float(value) < 1) or not name.isidentifier():
                raise argparse.ArgumentTypeError(
                    f"split item must be NAME, NAME=FRACTION or FRACTION with 0 < FRACTION < 1, "
                    f"got {item!r}"
                )
            held[name] = float(value)
        elif name.isidentifier():
            kept.append(name)
        else:
            raise argparse.ArgumentTypeError(
                f"split name must be letters, digits or _, got {item!r}"
            )
    if not kept and not held:
        raise argparse.ArgumentTypeError(f"split must name at least one split, got {text!r}")
    return tuple(kept), held


def run(args: argparse.Namespace) -> int:
    """Build the dataset and print what it holds."""
    _check_arguments(args)
    summary, draws = _build(args)
    state = "exists, left untouched (--overwrite rebuilds it)" if summary.reused else "written"
    print(f"kerastrans records: {summary.path}: {summary.kind} dataset {state}")
    for draw in draws:
        print(f"random split {draw.describe()}")
    print(summary.format())
    print(_units_line(summary))
    for name, split in summary.splits.items():
        if split.unequal_pair is not None:
            example_id, input_shape, target_shape = split.unequal_pair
            print(
                f"note: split {name!r}: input and target differ in size (e.g. {example_id}: "
                f"{_shape(input_shape)} -> {_shape(target_shape)}); fine for --model automap "
                "(one size per domain), refused by pix2pix, which outputs its input's size"
            )
    return 0


def _units_line(summary) -> str:
    """``units: input HU (DICOM CT), target ...``: what the values of each domain are.

    The metadata's ``units`` (recipes, simulations) come first, then the
    recorded DICOM Modality and channels of each domain's first split.
    """
    from kerastrans.data.records import read_metadata

    recorded = read_metadata(summary.path).get("units")
    domains = {}
    for name, split in summary.splits.items():
        for key, stats in split.features.items():
            unpaired = summary.kind == "unpaired" and name[-1:] in ("A", "B")
            domains.setdefault(f"domain {name[-1]}" if unpaired else key, stats)
    texts = []
    for domain, stats in domains.items():
        role = {"domain A": "input", "domain B": "target"}.get(domain, domain)
        given = recorded.get(role) if isinstance(recorded, dict) else recorded
        texts.append(f"{domain} {given if isinstance(given, str) else _units(stats)}")
    return "units: " + ", ".join(texts)


def _units(stats) -> str:
    if stats.units == "HU":
        return "HU (DICOM CT)"
    if stats.modality is not None:
        return f"values as stored (DICOM {stats.modality}, not CT)"
    channels = max(shape[2] for shape in stats.shapes)
    if channels > 1:
        return f"values as stored ({channels} channels, not CT)"
    return "values as stored (no DICOM Modality: HU only if the files hold HU)"


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _build(args: argparse.Namespace) -> tuple:
    """Build (or find) the dataset the arguments describe; return its summary and draws."""
    from kerastrans.data.recipes import build_recipe
    from kerastrans.data.records import check_output, is_dataset, read_summary, write_dataset
    from kerastrans.data.sources import source_splits

    options = {"overwrite": args.overwrite, "progress": args.progress}
    if args.recipe is not None:
        return build_recipe(args.recipe, args.out, seed=args.seed, **options), []
    if is_dataset(args.out) and not args.overwrite:  # do not read the source for nothing
        return read_summary(args.out, reused=True), []
    check_output(args.out)  # before the source is read
    mode = (
        "list"
        if args.pairs is not None
        else "paired"
        if args.paired
        else "unpaired"
        if args.unpaired
        else "folder"
    )
    source = args.pairs if args.pairs is not None else args.source
    keep, held_out = args.split or ((), {})
    splits = source_splits(
        source, mode, keep=keep, held_out=held_out, seed=args.seed, progress=args.progress
    )
    metadata = {
        "source": str(source),
        "mode": mode,
        "split": {
            "kept": list(keep),
            "held_out": held_out,
            "seed": args.seed,
            "draws": [dataclasses.asdict(draw) for draw in splits.draws],
        },
    }
    summary = write_dataset(
        args.out,
        splits,
        metadata=metadata,
        description=f"kerastrans records {mode} {source}",
        **options,
    )
    return summary, splits.draws


def _check_arguments(args: argparse.Namespace) -> None:
    """Usage errors (exit 2) for flag combinations argparse cannot express."""
    parser = args.parser
    if args.pairs is not None:
        if args.source is not None and args.source != args.pairs:
            parser.error("give the list file once: --pairs LIST (SOURCE must be omitted)")
    elif args.recipe is not None:
        if args.source is not None or args.split is not None:
            parser.error("--recipe builds a fixed dataset: omit SOURCE and --split")
    elif args.source is None:
        parser.error("SOURCE is required (or give --pairs LIST or --recipe NAME)")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
