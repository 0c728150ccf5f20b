"""``kerastrans simulate``: simulate CT datasets (sinograms, low-dose, super-resolution).

Tasks::

    kerastrans simulate ellipses   --out DIR   # the dival "ellipses" protocol
    kerastrans simulate sparseview --out DIR   # sinogram -> image (few angles, limited angle)
    kerastrans simulate lowdose    --out DIR   # low-dose FBP image -> clean image (HU)
    kerastrans simulate superres   --out DIR   # blurred, down-sampled image -> image

Sources for the last three (``--source``): a phantom (``ellipses``,
``shepp-logan``, ``forbild``), a kerastrans dataset folder (its
``target``/``image`` feature, split by split) or a folder of images
(DICOM/PNG/TIFF/NPY, read in physical units with `kerastrans.io.read_slices`,
written to one ``--split``). Images from folders and datasets are taken to be
in HU. Phantom values count relative to water (1 = water): attenuation is
``v * mu_water`` and, for low-dose, ``HU = 1000 (v - 1)``. Targets keep the
source's units; sinograms are line integrals of attenuation (1/mm x mm).

The geometry is stored in the dataset metadata:
``kerastrans.data.geometry.geometry_from_dataset(DIR)`` rebuilds it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kerastrans.cli._types import (
    at_least_one,
    count,
    non_negative_float,
    positive_float,
    positive_int,
)
from kerastrans.errors import DataError
from kerastrans.simulation import (
    NOTHING_TO_WRITE,
    PHANTOMS,
    SPLITS,
    Source,
    ellipses_simulation,
    lowdose_simulation,
    open_source,
    source_geometry,
    sparseview_simulation,
    superres_simulation,
)

__all__ = ["add_parser"]


# ------------------------------------------------------------------ parsers
def add_parser(subparsers) -> None:
    """Register ``kerastrans simulate`` and its four tasks."""
    parser = subparsers.add_parser(
        "simulate",
        help="Simulate datasets (ellipses sinograms, low-dose CT, sparse view, super-resolution).",
        description=__doc__.split("\n\n", 1)[1].replace("``", "'"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tasks = parser.add_subparsers(
        title="tasks", dest="task", metavar="TASK", parser_class=type(parser), required=True
    )
    ellipses = _task(
        tasks,
        "ellipses",
        _run_ellipses,
        "The dival 'ellipses' protocol: 128x128 "
        "phantoms, 30 angles, noise std 0.025 mean|Ax|, simulated at 400x400.",
    )
    _add_sizes(ellipses, (32000, 3200, 3200))
    _add_compute(ellipses)

    sparse = _task(
        tasks,
        "sparseview",
        _run_sparseview,
        "Sinogram -> image pairs: sparse-view or limited-angle CT.",
    )
    _add_source(sparse, num_angles=60, oversample=2.0)
    sparse.add_argument(
        "--noise", choices=("none", "white", "poisson"), default="white", help="noise model"
    )
    sparse.add_argument(
        "--relative-std",
        type=positive_float,
        default=0.025,
        help="white noise std relative to mean |sinogram|",
    )
    sparse.add_argument(
        "--photons", type=positive_float, default=4096.0, help="poisson: I0 per pixel"
    )

    lowdose = _task(
        tasks, "lowdose", _run_lowdose, "Low-dose FBP image -> clean image pairs in HU (denoising)."
    )
    _add_source(lowdose, num_angles=None, oversample=1.0)
    lowdose.add_argument("--photons", type=positive_float, default=1e4, help="incident photons I0")
    lowdose.add_argument(
        "--filter",
        choices=("Ram-Lak", "Shepp-Logan", "Cosine", "Hamming", "Hann"),
        default="Hann",
        help="FBP filter",
    )
    lowdose.add_argument(
        "--frequency-scaling", type=positive_float, default=1.0, help="FBP cut-off"
    )

    superres = _task(tasks, "superres", _run_superres, "Low-resolution -> high-resolution pairs.")
    _add_source(superres, num_angles=None, oversample=None)
    superres.add_argument("--factor", type=int, choices=(2, 4), default=2, help="down-sampling")
    superres.add_argument(
        "--sigma",
        type=non_negative_float,
        help="Gaussian blur in pixels; factor / 2 when not given",
    )
    superres.add_argument(
        "--upsample", action="store_true", help="resample the input back to the target size"
    )


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show ``(default: ...)`` only for options whose default is a value."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action)


def _task(tasks, name: str, run, help_text: str) -> argparse.ArgumentParser:
    parser = tasks.add_parser(
        name,
        help=help_text,
        description=help_text,
        formatter_class=_DefaultsFormatter,
    )
    parser.add_argument("--out", required=True, type=Path, help="dataset folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run, parser=parser)
    return parser


def _add_sizes(parser: argparse.ArgumentParser, sizes: tuple[int, int, int]) -> None:
    for split, default in zip(SPLITS, sizes, strict=True):
        parser.add_argument(
            f"--{split}",
            type=count,
            default=default,
            metavar="N",
            help=f"{split} examples (phantom sources)",
        )


def _add_compute(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--impl",
        choices=("astra_cpu", "astra_cuda"),
        help="ASTRA back-end; CUDA where available when not given",
    )
    parser.add_argument(
        "--threads", type=positive_int, help="projection threads; one per core when not given"
    )


def _add_source(parser: argparse.ArgumentParser, num_angles: int | None, oversample) -> None:
    parser.add_argument(
        "--source",
        default="ellipses",
        help=f"{', '.join(PHANTOMS)}, a dataset folder or an image folder",
    )
    parser.add_argument("--image-size", type=positive_int, default=128, help="phantom pixels")
    parser.add_argument("--split", default="train", help="split of an image-folder source")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    _add_sizes(parser, (1000, 100, 100))
    if oversample is None:
        return
    group = parser.add_argument_group("geometry")
    group.add_argument("--beam", choices=("parallel", "fan"), default="parallel", help="beam")
    group.add_argument(
        "--num-angles",
        type=positive_int,
        default=num_angles,
        help="projection angles; Nyquist-sampled when not given",
    )
    group.add_argument(
        "--angle-range",
        type=float,
        nargs=2,
        metavar=("START", "STOP"),
        help="degrees, e.g. 0 120 for limited angle; 0 180 (fan: 0 360) when not given",
    )
    group.add_argument(
        "--det-shape", type=positive_int, help="detector pixels; Nyquist-sampled when not given"
    )
    group.add_argument(
        "--pixel-size",
        type=positive_float,
        help="pixel size in mm; the source's pixel spacing (else 1) when not given",
    )
    group.add_argument(
        "--src-radius", type=positive_float, help="fan beam: source-axis distance, mm"
    )
    group.add_argument(
        "--det-radius", type=positive_float, help="fan beam: axis-detector distance, mm"
    )
    group.add_argument(
        "--mu-water", type=positive_float, default=0.02, help="water attenuation, 1/mm"
    )
    group.add_argument(
        "--oversample",
        type=at_least_one,
        default=oversample,
        help="simulate on a grid this many times finer (against the inverse crime)",
    )
    _add_compute(parser)


# --------------------------------------------------------------------- runs
def _run_ellipses(args: argparse.Namespace) -> int:
    sizes = {split: getattr(args, split) for split in SPLITS}
    return _write(args, ellipses_simulation(sizes, impl=args.impl, threads=args.threads))


def _run_sparseview(args: argparse.Namespace) -> int:
    source = _open_source(args, hounsfield=False)
    simulation = sparseview_simulation(
        source,
        _geometry(args, source),
        noise=args.noise,
        relative_std=args.relative_std,
        photons=args.photons,
        **_tomo_options(args),
    )
    return _write(args, simulation)


def _run_lowdose(args: argparse.Namespace) -> int:
    source = _open_source(args, hounsfield=True)
    if args.frequency_scaling > 1.0:
        args.parser.error(f"--frequency-scaling must be in (0, 1], got {args.frequency_scaling}")
    simulation = lowdose_simulation(
        source,
        _geometry(args, source),
        photons=args.photons,
        filter_type=args.filter,
        frequency_scaling=args.frequency_scaling,
        **_tomo_options(args),
    )
    return _write(args, simulation)


def _run_superres(args: argparse.Namespace) -> int:
    source = _open_source(args, hounsfield=False)
    simulation = superres_simulation(
        source, factor=args.factor, sigma=args.sigma, upsample=args.upsample
    )
    return _write(args, simulation)


def _write(args: argparse.Namespace, simulation) -> int:
    if not simulation.splits:
        args.parser.error(NOTHING_TO_WRITE)
    summary = simulation.write(args.out, overwrite=args.overwrite, progress=not args.no_progress)
    if summary.reused:
        print(f"{args.out}: dataset exists, left untouched (use --overwrite to replace it)")
    print(summary.format())
    return 0


# ------------------------------------------------------------------ helpers
def _tomo_options(args: argparse.Namespace) -> dict:
    """The settings every tomography task takes from the flags."""
    return {
        "mu_water": args.mu_water,
        "oversample": args.oversample,
        "seed": args.seed,
        "impl": args.impl,
        "threads": args.threads,
    }


def _open_source(args: argparse.Namespace, *, hounsfield: bool) -> Source:
    """The ``--source`` images; a source that does not exist is a usage error."""
    try:
        return open_source(
            args.source,
            sizes={split: getattr(args, split) for split in SPLITS},
            image_size=args.image_size,
            seed=args.seed,
            split=args.split,
            hounsfield=hounsfield,
        )
    except ValueError as error:
        if isinstance(error, DataError):
            raise
        args.parser.error(str(error))


def _geometry(args: argparse.Namespace, source: Source):
    """The resolved `GeometrySpec` of the flags; a bad combination is a usage error."""
    try:
        return source_geometry(
            source,
            pixel_size=args.pixel_size,
            beam=args.beam,
            num_angles=args.num_angles,
            angle_range=args.angle_range,
            det_shape=args.det_shape,
            src_radius=args.src_radius,
            det_radius=args.det_radius,
        )
    except ValueError as error:
        args.parser.error(str(error))
