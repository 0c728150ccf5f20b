"""The kerastrans demo, run by ``make demo``: ``python -m kerastrans.demo --out demo_output``.

Low-dose CT denoising from start to finish, on data that ships with the
installed packages (nothing is downloaded):

1. simulate a low-dose CT dataset in HU (`kerastrans.tomo`): the real CT
   slices of pydicom/pydicom-data and random-ellipse phantoms are projected
   (parallel beam, on a finer grid against the inverse crime), given Poisson
   photon noise (``I0`` photons per detector pixel) and reconstructed by FBP:
   noisy input, clean target;
2. train a pix2pix denoiser for a few minutes on the CPU (`kerastrans.training.fit`);
3. evaluate it on the test split (an unseen real CT slice and phantoms)
   against the low-dose input (`kerastrans.evaluate`);
4. export it as a SavedModel for TF Serving (`kerastrans.export`);
5. denoise the real DICOM slices into a derived DICOM series (`kerastrans.convert`);
6. print where everything is.

Re-running reuses what is built (the dataset, the finished run, the export
and the converted series); ``--rebuild`` starts again from scratch.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

__all__ = ["SETTINGS", "DemoSettings", "build_lowdose_ct", "main"]


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo: the dataset and the training run.

    Attributes:
        image_size: Side of the simulated images in pixels (real slices are
            averaged down to it).
        noise_draws: Low-dose realisations of each real training slice.
        phantoms: Random-ellipse phantoms in the train, validation and test splits.
        photons: Incident photons per detector pixel (``I0``), sets the dose.
        epochs: Training epochs.
        steps_per_epoch: Steps per epoch.
        batch_size: Images per step.
        crop: Side of the random training patches in pixels.
    """

    image_size: int = 256
    noise_draws: int = 8
    phantoms: tuple[int, int, int] = (32, 4, 8)
    photons: float = 5e3
    epochs: int = 8
    steps_per_epoch: int = 125
    batch_size: int = 4
    crop: int = 96


#: ``full`` is what ``make demo`` runs; ``quick`` checks the whole chain in seconds.
SETTINGS = {
    "full": DemoSettings(),
    "quick": DemoSettings(
        image_size=64,
        noise_draws=1,
        phantoms=(4, 2, 2),
        epochs=1,
        steps_per_epoch=2,
        batch_size=2,
        crop=32,
    ),
}

#: Real CT slices used for training and for testing (files of pydicom / pydicom-data).
_REAL = {
    "train": (
        "693_UNCI.dcm",
        "J2K_pixelrep_mismatch.dcm",
        "bad_sequence.dcm",
        "explicit_VR-UN.dcm",
    ),
    "test": ("CT_small.dcm",),
}
#: Air: the lowest value of the simulated images, HU (padding outside the field of view
#: of real scans is set to it, as the scanner would see air there).
_AIR = -1000.0


def build_lowdose_ct(
    out_dir: str | Path,
    settings: DemoSettings = SETTINGS["full"],
    *,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
):
    """Simulate the demo's low-dose CT denoising dataset (paired, HU) at ``out_dir``.

    Splits: ``train`` (real slices x ``noise_draws`` + phantoms),
    ``validation`` (phantoms), ``test`` (the real ``CT_small.dcm`` slice x 4
    noise draws + phantoms). An existing dataset is reused unless ``overwrite``.

    Returns:
        The `kerastrans.data.DatasetSummary`.
    """
    from kerastrans.data import write_dataset

    rng = np.random.default_rng(seed)
    splits = {
        "train": _chain(
            _real(_REAL["train"], settings, settings.noise_draws, rng),
            _phantoms(settings, 0, seed, rng),
        ),
        "validation": _phantoms(settings, 1, seed, rng),
        "test": _chain(_real(_REAL["test"], settings, 4, rng), _phantoms(settings, 2, seed, rng)),
    }
    metadata = {
        "task": "denoising",
        "units": {"input": "HU", "target": "HU"},
        "window": {"base": _AIR, "range": 2000.0},
        "simulation": {
            "photons": settings.photons,
            "filter": "Hann",
            "beam": "parallel",
            "simulation_grid": "2x finer",
            "seed": seed,
            "sources": {**_REAL, "phantoms": list(settings.phantoms)},
        },
    }
    return write_dataset(
        out_dir,
        splits,
        metadata=metadata,
        overwrite=overwrite,
        progress=progress,
        description="kerastrans demo: low-dose CT (Poisson noise + FBP) -> clean CT, HU",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m kerastrans.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out", type=Path, default=Path("demo_output"), help="output folder (default: demo_output)"
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild everything from scratch")
    parser.add_argument(
        "--settings",
        choices=sorted(SETTINGS),
        default="full",
        help="'quick' runs the whole chain on tiny sizes (a smoke test)",
    )
    args = parser.parse_args(argv)
    _quiet_libraries()
    settings = SETTINGS[args.settings]
    out = args.out
    if args.rebuild and out.exists():
        shutil.rmtree(out)

    _step(
        1,
        f"simulate low-dose CT: real slices + phantoms, Poisson noise (I0 = "
        f"{settings.photons:g}) + FBP, HU",
    )
    summary = build_lowdose_ct(out / "dataset", settings, progress=False)
    print(f"{summary.path} ({'reused' if summary.reused else 'built'})")
    print(summary.format(units="HU"))

    _step(2, "train a pix2pix denoiser (re-running resumes or reuses the run)")
    result = _train(summary.path, out / "run", settings)

    _step(3, "evaluate on the test split against the low-dose input")
    report = _evaluate(out / "run", summary.path, out / "evaluation")

    _step(4, "export a SavedModel for TF Serving (physical units in and out)")
    saved_model = _export(out / "run", out / "saved_model")

    _step(5, "denoise the real DICOM slices into a derived DICOM series")
    converted = _convert(out / "run", out / "dicom_denoised")

    print("\n== done: PSNR (dB, data range max - min of each ground truth), low-dose -> denoised")
    for group, (count, low_dose, denoised, *_) in report.items():
        print(
            f"  {group:24s} {count:3d} images: {low_dose:6.2f} -> {denoised:6.2f} "
            f"(gain {denoised - low_dose:+.2f} dB)"
        )
    print("bias (HU, mean of output - target; soft tissue: target in -200..200 HU)")
    for group, (count, _, _, bias_in, bias_out, soft_in, soft_out) in report.items():
        print(
            f"  {group:24s} {count:3d} images: {bias_in:+6.1f} -> {bias_out:+6.1f}, "
            f"soft tissue {soft_in:+6.1f} -> {soft_out:+6.1f}"
        )
    for label, path in (
        ("dataset", summary.path),
        ("run directory", result),
        ("image grids", result / "grids"),
        ("history", result / "history.csv"),
        ("evaluation", out / "evaluation"),
        ("SavedModel", saved_model),
        ("denoised DICOM series", converted),
    ):
        print(f"  {label:22s} {path}")
    return 0


# ----------------------------------------------------------------------------------------------
# The dataset.


def _chain(*parts: Iterator[dict]) -> Iterator[dict]:
    for part in parts:
        yield from part


def _real(names: Sequence[str], settings: DemoSettings, draws: int, rng) -> Iterator[dict]:
    """Low-dose records of real CT slices: each averaged to about ``image_size``, air-floored."""
    from kerastrans.data.recipes.pydicom_ct import real_ct_slices

    for name, pixels, extent in real_ct_slices(names, settings.image_size, air=_AIR):
        copies = [(f"{name}#noise{i}", pixels) for i in range(draws)]
        yield from _simulate(copies, pixels.shape, extent, settings, rng)


def _phantoms(settings: DemoSettings, split: int, seed: int, rng) -> Iterator[dict]:
    """Low-dose records of random-ellipse phantoms in HU (0 -> air, 1 -> water), 1 mm pixels."""
    from kerastrans.simulation import phantom_to_hu
    from kerastrans.tomo.phantoms import random_ellipses

    size = settings.image_size
    images = random_ellipses(settings.phantoms[split], seed + 100 + split, shape=(size, size))
    named = ((f"ellipses-{split}-{i:03d}", phantom_to_hu(v)) for i, v in enumerate(images))
    yield from _simulate(named, (size, size), (float(size), float(size)), settings, rng)


def _simulate(images, shape, extent, settings: DemoSettings, rng) -> Iterator[dict]:
    """Low-dose records as ``kerastrans simulate lowdose`` makes them (on a 2x finer grid)."""
    from kerastrans.simulation import lowdose_records
    from kerastrans.tomo.geometry import GeometrySpec

    geometry = GeometrySpec(tuple(shape), extent=extent, num_angles=180)
    yield from lowdose_records(
        images, geometry, photons=settings.photons, random_state=rng, oversample=2.0
    )


# ----------------------------------------------------------------------------------------------
# Training, evaluation, export, conversion.


def _train(dataset: Path, run_dir: Path, settings: DemoSettings) -> Path:
    from kerastrans.config import Config, DataConfig, TrainingConfig
    from kerastrans.training import fit
    from kerastrans.training.resolve import CT_WINDOW

    window = CT_WINDOW  # the whole CT range: outputs in HU must reach every CT value
    config = Config(
        data=DataConfig(
            dataset=str(dataset),
            eval_split="validation",
            input_window=window,
            target_window=window,
            augment={"flip_left_right": True, "flip_up_down": True},
            batch_size=settings.batch_size,
            crop=(settings.crop, settings.crop),
            seed=0,
        ),
        training=TrainingConfig(
            epochs=settings.epochs,
            steps_per_epoch=settings.steps_per_epoch,
            g_learning_rate=5e-4,  # 2e-3 collapsed the generator on the -1024..3071 HU window
            schedule={"kind": "cosine"},
            checkpoint_every=50,
        ),
        # L1 leads (what PSNR rewards); the PatchGAN gets a tenth of pix2pix's weight.
        losses={"l1": 100.0, "adversarial": 0.1},
    )
    result = fit(config, run_dir, strategy="default", progress=True)
    if result.already_finished:
        print(f"{run_dir}: finished run reused ({result.epochs} epochs)")
    else:
        print(f"{run_dir}: trained {result.trained_steps} steps")
    return run_dir


def _evaluate(run_dir: Path, dataset: Path, out_dir: Path) -> dict[str, tuple]:
    """Evaluate and save the report.

    Returns:
        ``{group: (images, input PSNR, model PSNR, input bias, model bias,
        input soft-tissue bias, model soft-tissue bias)}`` (biases in HU).
    """
    from kerastrans.evaluate import COLUMNS, evaluate
    from kerastrans.runs import load_run

    report = evaluate(
        load_run(run_dir).translator(), dataset, "test", baseline="input", progress=False
    )
    report.save(out_dir)
    print(report.to_markdown())
    columns = [COLUMNS.index(name) for name in ("psnr", "bias", "bias_soft_tissue")]
    real = np.array([name.split("#")[0] in _REAL["test"] for name in report.ids])
    groups = {
        "all test images": np.ones_like(real),
        "real CT (unseen slice)": real,
        "phantoms (unseen)": ~real,
    }
    return {
        name: (
            int(rows.sum()),
            *(
                float(np.nanmean(report.scores[method][rows, column]))
                for column in columns
                for method in ("input", "model")
            ),
        )
        for name, rows in groups.items()
        if rows.any()
    }


def _export(run_dir: Path, model_dir: Path) -> Path:
    from kerastrans.export import export_run

    version = model_dir / "1"
    if version.exists():
        print(f"{version}: exists, reused")
        return version
    path = export_run(run_dir, model_dir)
    print(f"{path}: SavedModel, signature 'serving_default' (images in HU -> output in HU)")
    return path


def _convert(run_dir: Path, out_dir: Path) -> Path:
    from kerastrans.convert import convert
    from kerastrans.data.recipes.pydicom_ct import source_path

    if out_dir.exists():
        print(f"{out_dir}: exists, reused")
        return out_dir
    sources = out_dir.parent / "dicom_source"
    sources.mkdir(parents=True, exist_ok=True)
    for name in (*_REAL["train"], *_REAL["test"]):
        target = sources / name
        if not target.exists():
            shutil.copyfile(source_path(name), target)
    summary = convert(run_dir, sources, out_dir, progress=False, on_error=print)
    print(summary.format())
    return out_dir


def _quiet_libraries() -> None:
    """Keep the demo's output readable: no deprecation notices from TFDS internals."""
    logging.getLogger("absl").setLevel(logging.ERROR)


def _step(number: int, text: str) -> None:
    print(f"\n== step {number}: {text}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
