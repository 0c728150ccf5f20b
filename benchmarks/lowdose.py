"""Low-dose CT denoising: pix2pix (L1 only, and L1 + adversarial) against the low-dose input.

Usage::

    python benchmarks/lowdose.py [--epochs 8] [--train-images 256] [--work DIR] [--quick]
        [--methods pix2pix-l1+adv ...]

Protocol (`_paired` has what this benchmark shares with ``superres.py``):

- phantoms: random ellipses in HU (`_paired.phantoms_hu`: partial-volume
  edges, air background, the brightest structure between water and +1500 HU),
  128 x 128 pixels of 2 mm (a 256 mm, head-sized field): 256 for training,
  32 for validation and 64 held-out test phantoms, from three seeds;
- real CT: every CT slice of pydicom/pydicom-data (`_paired.real_ct`: five
  patients, head, neck, pancreas, body; 512-pixel slices averaged to 128, with
  their own pixel size), 4 noise draws each. Never used in training or
  validation: they only test how far a denoiser trained on phantoms carries;
- low dose (`kerastrans.tomo.simulate.lowdose_examples`): parallel beam, 180
  angles, projected on a grid twice as fine (against the inverse crime),
  Poisson noise with ``I0 = 2000`` photons per detector pixel, FBP (Hann
  filter). ``I0`` was set before any training, by looking at phantoms
  drawn with another seed, so that FBP is visibly noisy (grain, and streaks
  through dense ellipses): on phantoms the input is ~27-28 dB PSNR, ~29 dB
  without noise (the error left is the FBP blur of sharp, high-contrast
  edges, which the network has to undo as well);
- runs (`_paired.pix2pix_config`): the default U-Net, batch 8 of random
  64 x 64 crops with flips, 8 epochs of 150 steps; ``pix2pix-l1`` has L1
  only (adversarial weight 0: no discriminator is built),
  ``pix2pix-l1+adv`` pix2pix's weights (L1 100 + vanilla GAN 1, PatchGAN);
- scores: `kerastrans.evaluate.evaluate` with the input as baseline, PSNR
  and SSIM with the data range max - min of each ground truth (as dival), RMSE
  in HU, on the held-out phantoms (rows ``low-dose input``, ``pix2pix-l1``,
  ``pix2pix-l1+adv``) and on the real slices (same names prefixed
  ``real-ct``).

Goal: at least +4.5 dB PSNR over the low-dose input on the held-out test
phantoms (RED-CNN's gain on the public abdomen benchmark); the real-CT gain is
reported alongside. Nothing is tuned on a test split.

Compute, measured on the idle 2-core CPU: ~80 ms per L1 step and ~110 ms
per L1 + adversarial step, so the defaults (1,200 steps per run) should take
about 6 minutes. Re-running resumes: data and runs live in ``--work``
(default ``benchmarks/work/lowdose``). The long version, ``--epochs 56 --train-images
1024 --work benchmarks/work/lowdose-2h`` (8,400 steps per run), took 36
minutes for the whole command, inside the issue's 2-hour budget. In the same
``--work``, more epochs continue the finished runs, their cosine schedule
stretched over the new length. ``--methods`` trains and scores only the
runs named (e.g. ``--methods pix2pix-l1+adv``) and keeps the other runs' rows
of the previous JSON as they were.
``--quick`` checks the whole chain on tiny sizes in ``<work>-quick`` and
writes nothing to ``benchmarks/results``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path

import _paired as paired
import numpy as np

NAME = "lowdose"
#: Row name of the low-dose FBP input, the baseline of the gains.
BASELINE = "low-dose input"
#: Incident photons per detector pixel (``I0``): FBP visibly noisy, fixed before training.
PHOTONS = 2000.0
#: Projection angles over 180 degrees (parallel beam).
ANGLES = 180
#: Phantom pixel size, mm.
PIXEL_MM = 2.0
#: PSNR gain over the low-dose input to reach on the held-out phantoms, dB.
GOAL_DB = 4.5
#: Loss weights and ``model.precision`` of each run: ``auto`` trains in mixed bfloat16 where
#: the CPU computes it natively; the float32 row is the same training, to show what it costs.
RUNS = {
    "pix2pix-l1": ({"l1": 100.0, "adversarial": 0.0}, "auto"),
    "pix2pix-l1-float32": ({"l1": 100.0, "adversarial": 0.0}, "float32"),
    "pix2pix-l1+adv": ({"l1": 100.0, "adversarial": 1.0}, "auto"),
}
#: The float32 row must land within this many dB of the row in ``auto`` precision.
PRECISION_TOLERANCE_DB = 0.2


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes of the benchmark: image side (pixels), phantoms per split, noise draws, training."""

    image_size: int
    phantoms: tuple[int, int, int]
    noise_draws: int
    train: paired.TrainSettings


#: The defaults (about 18 minutes) and ``--quick`` (a smoke run of the whole chain).
FULL = Settings(128, (256, 32, 64), 4, paired.TrainSettings(8, 150, batch_size=8, crop=64))
QUICK = Settings(64, (8, 4, 4), 1, paired.TrainSettings(1, 3, batch_size=2, crop=32))


def build(path: Path, settings: Settings) -> Path:
    """Simulate the low-dose dataset: phantom splits and the ``real_ct`` split."""
    size = settings.image_size
    shape, extent = (size, size), (PIXEL_MM * size, PIXEL_MM * size)
    counts = dict(zip(("train", "validation", "test"), settings.phantoms, strict=True))
    splits = {
        split: _simulate(paired.phantoms_hu(count, split, size), shape, extent, stream)
        for stream, (split, count) in enumerate(counts.items())
    }
    splits["real_ct"] = _real_ct(settings)
    metadata = {
        "task": "denoising",
        "units": {"input": "HU", "target": "HU"},
        "simulation": {
            "photons": PHOTONS,
            "angles": ANGLES,
            "beam": "parallel",
            "filter": "Hann",
            "simulation_grid": "2x finer",
            "phantom_pixel_mm": PIXEL_MM,
        },
        "image_size": size,
        "phantoms": counts,
        "noise_draws": settings.noise_draws,
    }
    return paired.build_dataset(path, splits, metadata, "low-dose CT (Poisson + FBP) -> clean, HU")


def _simulate(
    images, shape: tuple[int, int], extent: tuple[float, float], stream: int
) -> Iterator[dict]:
    """Low-dose records of ``(id, HU image)`` pairs of ``shape``; noise seeded per ``stream``."""
    from kerastrans.tomo.geometry import GeometrySpec
    from kerastrans.tomo.simulate import lowdose_examples

    return lowdose_examples(
        images,
        GeometrySpec(shape, extent=extent, num_angles=ANGLES),
        photons=PHOTONS,
        random_state=np.random.default_rng((0, stream)),
        simulation_shape=(2 * shape[0], 2 * shape[1]),
    )


def _real_ct(settings: Settings) -> Iterator[dict]:
    """``noise_draws`` low-dose records of each real slice, each with its own field of view."""
    for stream, (name, image, extent) in enumerate(paired.real_ct(settings.image_size), start=10):
        copies = [(f"{name}#noise{i}", image) for i in range(settings.noise_draws)]
        yield from _simulate(copies, image.shape, extent, stream)


def main(argv: list[str] | None = None) -> int:
    doc = __doc__.split("\n\n")[0]
    settings, work, quick, methods = paired.parse_arguments(
        NAME, doc, FULL, QUICK, argv, methods=list(RUNS)
    )
    dataset = build(work / "dataset", settings)
    configs = {
        name: paired.pix2pix_config(dataset, settings.train, *RUNS[name]) for name in methods
    }
    runs = paired.train_runs(configs, work)
    scores = paired.score_runs(
        {name: (run, dataset) for name, run in runs.items()},
        BASELINE,
        settings.train.steps,
        input_keys={"photons": PHOTONS},
        model_keys={"train_images": settings.phantoms[0]},
    )
    goals = dict.fromkeys(methods, GOAL_DB)
    title = f"low-dose CT, I0 = {PHOTONS:g}"
    names = [BASELINE, *RUNS]
    order = names + [paired.REAL + name for name in names]
    rows = paired.finish(
        NAME, [scores], goals, title, work=work, quick=quick, argv=argv, order=order
    )
    if {"pix2pix-l1", "pix2pix-l1-float32"} <= {row["method"] for row in rows}:
        print(precision_verdict(rows))
    return 0


def precision_verdict(rows: list[dict]) -> str:
    """How far the float32 run lands from the same training in ``auto`` precision (phantoms)."""
    psnr = {row["method"]: row for row in rows}
    auto, float32 = psnr["pix2pix-l1"], psnr["pix2pix-l1-float32"]
    gap = auto["psnr"] - float32["psnr"]
    state = "met" if abs(gap) <= PRECISION_TOLERANCE_DB else "NOT met"
    return (
        f"precision: pix2pix-l1 in {auto['precision']} {auto['psnr']:.2f} dB "
        f"({auto['ms_per_step']:.0f} ms/step) vs float32 {float32['psnr']:.2f} dB "
        f"({float32['ms_per_step']:.0f} ms/step): {gap:+.2f} dB; goal within "
        f"{PRECISION_TOLERANCE_DB} dB: {state}"
    )


if __name__ == "__main__":
    sys.exit(main())
