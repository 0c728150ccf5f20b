"""Super-resolution x2 and x4 of CT images: bicubic interpolation against the pix2pix generator.

Usage::

    python benchmarks/superres.py [--epochs 8] [--train-images 512] [--work DIR] [--quick]

Protocol (`_paired` has what this benchmark shares with ``lowdose.py``):

- images: random-ellipse phantoms in HU (`_paired.phantoms_hu`:
  partial-volume edges, air background, the brightest structure between
  water and +1500 HU), 128 x 128: 512 for training, 32 for validation and
  64 held-out test phantoms, from three seeds; as an extra test group, every
  real CT slice of pydicom/pydicom-data (`_paired.real_ct`, averaged to 128 x
  128), never used in training;
- degradation (`kerastrans.tomo.simulate.superres_examples`): Gaussian blur
  of ``factor / 2`` pixels (about one low-resolution pixel) and the mean of
  ``factor x factor`` blocks, then bicubic interpolation back to 128 x 128
  (cubic spline, order 3). The bicubic image is both the baseline and the
  network's input, so ``baseline="input"`` scores bicubic exactly and the
  U-Net maps the bicubic image to the sharp one;
- runs (`_paired.pix2pix_config`): one per factor, the default U-Net trained
  with L1 only (adversarial weight 0: no discriminator; the adversarial
  term trades PSNR for texture, which ``lowdose.py`` measures), batch 8 of
  random 64 x 64 crops with flips, 8 epochs of 200 steps;
- scores: `kerastrans.evaluate.evaluate`, PSNR and SSIM with the data range
  max - min of each ground truth (as dival), RMSE in HU; rows ``bicubic x2``,
  ``pix2pix x2``, ``bicubic x4``, ``pix2pix x4`` on the held-out phantoms and
  the same names prefixed ``real-ct`` on the real slices.

Goal: at least +3 dB PSNR over bicubic at x2 on the held-out test phantoms
(x4 and the real slices are reported alongside). Nothing is tuned on a test
split.

Compute: about 16 minutes on the 2-core CPU with the defaults (data ~1.5
min, ~0.27 s per step). Re-running resumes: data and runs live in ``--work``
(default ``benchmarks/work/superres``). The ~2-hour version is ``--epochs 64
--work benchmarks/work/superres-2h`` (in the same ``--work``, more epochs
continue the finished runs, their cosine schedule stretched over the new
length). ``--quick`` checks the whole chain on tiny sizes in ``<work>-quick``
and writes nothing to ``benchmarks/results``.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Iterator
from pathlib import Path

import _paired as paired

NAME = "superres"
#: Down-sampling factors, one run each.
FACTORS = (2, 4)
#: Spline order of the interpolation back to the target grid: bicubic.
BICUBIC = 3
#: Least PSNR gain over bicubic on the held-out phantoms, dB.
GOALS = {"pix2pix x2": 3.0}
#: Loss weights of every run: L1 only.
LOSSES = {"l1": 100.0, "adversarial": 0.0}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes of the benchmark: image side (pixels), phantoms per split, training."""

    image_size: int
    phantoms: tuple[int, int, int]
    train: paired.TrainSettings


#: The defaults (about 16 minutes) and ``--quick`` (a smoke run of the whole chain).
FULL = Settings(128, (512, 32, 64), paired.TrainSettings(8, 200, batch_size=8, crop=64))
QUICK = Settings(64, (8, 4, 4), paired.TrainSettings(1, 3, batch_size=2, crop=32))


def build(work: Path, settings: Settings) -> dict[int, Path]:
    """Write one dataset per factor (splits of phantoms and ``real_ct``); return them."""
    size = settings.image_size
    counts = dict(zip(("train", "validation", "test"), settings.phantoms, strict=True))

    @functools.cache
    def images(split: str) -> list:
        # Rendered once for both factors, and only if a dataset is (re)built.
        if split == "real_ct":
            return [(name, image) for name, image, _ in paired.real_ct(size)]
        return list(paired.phantoms_hu(counts[split], split, size))

    datasets = {}
    for factor in FACTORS:
        metadata = {
            "task": "super-resolution",
            "units": {"input": "HU", "target": "HU"},
            "factor": factor,
            "blur_pixels": factor / 2,
            "interpolation": "bicubic (cubic spline)",
            "image_size": size,
            "phantoms": counts,
        }
        splits = {split: _examples(images, split, factor) for split in (*counts, "real_ct")}
        description = f"x{factor} super-resolution: blur + block mean + bicubic -> sharp, HU"
        datasets[factor] = paired.build_dataset(
            work / f"dataset-x{factor}", splits, metadata, description
        )
    return datasets


def _examples(images, split: str, factor: int) -> Iterator[dict]:
    """Records of one split, made lazily (a reused dataset renders nothing)."""
    from kerastrans.tomo.simulate import superres_examples

    yield from superres_examples(images(split), factor, upsample=True, interpolation=BICUBIC)


def main(argv: list[str] | None = None) -> int:
    doc = __doc__.split("\n\n")[0]
    settings, work, quick, _ = paired.parse_arguments(NAME, doc, FULL, QUICK, argv)
    datasets = build(work, settings)
    configs = {
        f"pix2pix x{factor}": paired.pix2pix_config(dataset, settings.train, LOSSES)
        for factor, dataset in datasets.items()
    }
    runs = paired.train_runs(configs, work)
    scores = [
        paired.score_runs(
            {f"pix2pix x{factor}": (runs[f"pix2pix x{factor}"], dataset)},
            f"bicubic x{factor}",
            settings.train.steps,
            label=f", x{factor}",
            model_keys={"train_images": settings.phantoms[0]},
        )
        for factor, dataset in datasets.items()
    ]
    title = f"super-resolution, {settings.image_size} x {settings.image_size} HU"
    paired.finish(NAME, scores, GOALS, title, work=work, quick=quick, argv=argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
