"""Modality conversion with unpaired data: MR -> CT by a CycleGAN, against two baselines.

Usage::

    python benchmarks/modality.py [--steps 5000] [--work DIR] [--quick]

Data (simulated here, nothing is downloaded). Each phantom is a label map of a
head-like slice drawn on a grid twice as fine as the images: air outside a
random ellipse, then concentric shells of scalp fat, skull bone and a thin
fluid (CSF) layer around soft tissue (brain), and 2-6 inner ellipses of fluid
(ventricles), fat or bone (calcifications); soft tissue carries a smooth random
texture. Every phantom is rendered in two modalities, each averaged 2 x 2 onto
the image grid (partial volume at the edges):

- CT (domain B), HU: air -1000, fat -100, soft tissue 40 (+- 12 HU texture),
  fluid 10, bone 700; training images get white Gaussian noise of 20 HU.
- MR-like (domain A), arbitrary units, a T2-like contrast that is not a
  monotonic function of HU: air 0, bone 0.08 (dark like air), soft tissue 0.45
  (+- 0.04 texture), fat 0.75, fluid 1.0 (brightest); times a smooth bias
  field (a random second-order polynomial, within +- 20 %), then Rician noise
  (magnitude of a complex signal with Gaussian noise of 0.03 per channel).

Protocol. ``trainA`` holds the MR renderings of one set of phantoms and
``trainB`` the noisy CT renderings of another, disjoint set: the CycleGAN never
sees a pair. ``validationA``/``validationB`` (a third set, paired by order)
only monitor training (``history.csv``). The test set is a fourth set of held-out
phantoms: input = the MR rendering, target = the **noise-free** CT rendering
of the same phantom, so the scores measure the conversion, not a noise draw.
Every phantom comes from its own generator seeded by ``(seed, split, index)``.

Methods, scored as dival scores (PSNR and SSIM with the data range max - min
of each CT target, about 1,700 HU; MAE in HU; means over the test images):

- ``identity``: the MR image itself against the CT target (MR units: a floor);
- ``histogram matching``: ``skimage.exposure.match_histograms`` of each test MR
  image to the pixels of the first 256 training CT images (``trainB``; never
  test data);
- ``cyclegan``: `kerastrans.models.CycleGAN` trained with
  `kerastrans.training.fit` (via ``_training.train``: resumable, wall clock
  kept) on whole 64 x 64 images, batch 1, for ``--steps`` steps (rounded up
  to whole epochs of 250), then ``load_run(run).translator("AtoB")`` applied
  to the test MR images. Two U-Net generators (4 levels, 16-128 channels,
  instance normalisation, concatenated skips: the geometry must not move) and
  two PatchGANs (2 strided levels, 32 channels, 34 x 34 receptive field), LSGAN
  loss, cycle weight 10; no identity loss (an MR image is not a CT image, so
  G(b) ~ b would fight the contrast change); image pool of 50; Adam 2e-4
  (beta_1 0.5), constant for half the run then linear decay to 0 (Zhu et al.
  2017). Windows: MR [0, 1.5] and CT [-1100, 3071] HU -> [-1, 1], so that air
  (-1000 HU) is reachable by the generator's tanh.

Extra keys of the ``cyclegan`` row: ``train_images`` (MR plus CT images of
the unpaired training set), ``train_steps`` (optimizer steps of the run),
``batch_size``, ``train_hours`` (wall clock over all sessions of the run) and
``ms_per_step`` (that wall clock per step: compilation, validation passes and
checkpoints included) and ``cpu_steal`` (the share of the CPU time the
hypervisor took meanwhile; see `_training.train_timing`).

Everything is built under ``--work`` (default ``benchmarks/work/modality``):
re-running reuses the dataset, resumes an interrupted run and reuses a
finished one. The default run (5,000 steps of about 200 ms on the shared
machine, 100-120 ms alone) is sized for about 15 minutes on the project's
2-core CPU; ``--steps 25000`` (under 2 hours) extends a finished run in the
same folder (the learning-rate decay then stretches over the new length).
``--quick`` (32 x 32 images, 8 + 8 phantoms, 4 steps, into ``<work>-quick``)
checks the script in under a minute and writes nothing to ``results/``.
Nothing is tuned on the test split: the settings were chosen on validation
phantoms.

Goal: the CycleGAN at least 10 dB above histogram matching (PSNR).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from _common import RESULTS, print_table, save_figure, write_results
from _training import add_work_arguments, build_dataset, train, train_timing, translate_stack

NAME = "modality"
#: The CycleGAN must beat histogram matching by this many dB (PSNR).
GOAL_DB = 10.0

#: Tissue labels of the phantoms, in label-map order.
LABELS = ("air", "fat", "soft tissue", "fluid", "bone")
AIR, FAT, SOFT, FLUID, BONE = range(len(LABELS))
#: CT value of each label, HU.
CT_HU = np.array([-1000.0, -100.0, 40.0, 10.0, 700.0], np.float32)
#: MR-like value of each label, arbitrary units (T2-like: fluid bright, bone dark).
MR_VALUE = np.array([0.0, 0.75, 0.45, 1.0, 0.08], np.float32)
#: Standard deviation of the soft-tissue texture in each modality (HU; MR units).
TEXTURE = {"ct": 12.0, "mr": 0.04}
#: Noise: white Gaussian on the training CT images (HU); Rician on MR (per channel).
CT_NOISE_HU = 20.0
MR_NOISE = 0.03
#: Largest relative deviation of the MR bias field.
BIAS = 0.2
#: Windows mapped to [-1, 1]: (base, range) of MR (arbitrary units) and CT (HU).
MR_WINDOW = (0.0, 1.5)
CT_WINDOW = (-1100.0, 4171.0)  # up to 3071 HU: `fit` requires the CT range of outputs in HU
#: Training CT images whose pixels form the histogram-matching reference.
REFERENCE_IMAGES = 256
#: Display windows of the figure.
_SHOW = {"mr": (0.0, 1.3), "ct": (-1000.0, 1000.0)}
_SPLIT_CODES = {"trainA": 0, "trainB": 1, "validation": 2, "test": 3}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes of one benchmark run.

    Attributes:
        image_size: Side of the images in pixels (phantoms are drawn at twice it).
        phantoms: Phantoms of ``trainA`` (MR), ``trainB`` (CT), validation and test.
        steps: Training steps asked for (rounded up to whole epochs).
        steps_per_epoch: Steps of an epoch (a checkpoint, a grid, a validation pass).
        batch_size: Images per step and domain.
        generator: `kerastrans.config.GeneratorConfig` fields of G and F.
        discriminator: `kerastrans.config.DiscriminatorConfig` fields of both PatchGANs.
    """

    image_size: int = 64
    phantoms: tuple[int, int, int, int] = (1000, 1000, 16, 100)
    steps: int = 5000
    steps_per_epoch: int = 250
    batch_size: int = 1
    generator: tuple[tuple[str, object], ...] = (
        ("depth", 4),
        ("base_channels", 16),
        ("max_channels", 128),
        ("stem_kernel", 3),
        ("skip", "concat"),
        ("residual_blocks", 0),
        ("norm", "instance"),
        ("encoder_activation", "leaky_relu"),
    )
    discriminator: tuple[tuple[str, object], ...] = (("base_channels", 32), ("depth", 2))

    @property
    def epochs(self) -> int:
        """Epochs that cover ``steps``."""
        return max(1, math.ceil(self.steps / self.steps_per_epoch))


#: ``full`` is the benchmark; ``quick`` checks the script end to end in about a minute.
SETTINGS = {
    "full": Settings(),
    "quick": Settings(image_size=32, phantoms=(8, 8, 2, 4), steps=4, steps_per_epoch=2),
}


# ----------------------------------------------------------------------------------------------
# Phantoms and their two renderings.


def draw_phantom(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw a head-like label map and a soft-tissue texture on a ``2 size`` square grid.

    Returns:
        ``(labels, texture)``: uint8 indices of `LABELS` and a float32 smooth
        random field of unit standard deviation.
    """
    from scipy.ndimage import gaussian_filter

    fine = 2 * size
    centre = rng.uniform(-0.05, 0.05, 2)
    axes = np.array([rng.uniform(0.72, 0.92), rng.uniform(0.6, 0.85)])
    angle = rng.uniform(0.0, np.pi)
    radius = _ellipse_radius(fine, centre, axes, angle)
    labels = np.full((fine, fine), AIR, np.uint8)
    scalp, skull, csf = rng.uniform(0.07, 0.12), rng.uniform(0.07, 0.12), rng.uniform(0.03, 0.06)
    brain = 1.0 - scalp - skull - csf
    for scale, label in ((1.0, FAT), (1 - scalp, BONE), (1 - scalp - skull, FLUID), (brain, SOFT)):
        labels[radius < scale] = label
    inside = radius < brain
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    for _ in range(rng.integers(2, 7)):
        where = np.sqrt(rng.uniform()) * 0.65 * brain
        theta = rng.uniform(0.0, 2 * np.pi)
        offset = rotation @ (where * axes * np.array([np.cos(theta), np.sin(theta)]))
        small_axes, small_angle = rng.uniform(0.04, 0.2, 2), rng.uniform(0.0, np.pi)
        small = _ellipse_radius(fine, centre + offset, small_axes, small_angle)
        label = rng.choice([FLUID, FLUID, FAT, BONE])
        labels[(small < 1.0) & inside] = label
    texture = gaussian_filter(rng.standard_normal((fine, fine)), sigma=fine / 24)
    return labels, (texture / texture.std()).astype(np.float32)


def render(labels: np.ndarray, texture: np.ndarray, modality: str) -> np.ndarray:
    """Noise-free rendering of a phantom on the image grid (2 x 2 mean), float32.

    Args:
        labels: Label map from `draw_phantom`.
        texture: Its soft-tissue texture.
        modality: ``"ct"`` (HU) or ``"mr"`` (arbitrary units, before bias field).
    """
    values = {"ct": CT_HU, "mr": MR_VALUE}[modality]
    fine = values[labels] + TEXTURE[modality] * texture * (labels == SOFT)
    size = labels.shape[0] // 2
    return fine.reshape(size, 2, size, 2).mean(axis=(1, 3)).astype(np.float32)


def acquire_mr(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An MR acquisition of a rendering: smooth bias field, then Rician noise."""
    size = clean.shape[0]
    y, x = np.meshgrid(*(np.linspace(-1.0, 1.0, size),) * 2, indexing="ij")
    terms = np.stack([x, y, x * y, x**2 - 0.5, y**2 - 0.5])
    field = np.tensordot(rng.uniform(-1.0, 1.0, len(terms)), terms, axes=1)
    biased = clean * (1.0 + BIAS * field / max(np.abs(field).max(), 1e-6))
    real, imaginary = rng.normal(0.0, MR_NOISE, (2, size, size))
    return np.hypot(biased + real, imaginary).astype(np.float32)


def acquire_ct(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A training CT image of a rendering: white Gaussian noise of `CT_NOISE_HU`."""
    return (clean + rng.normal(0.0, CT_NOISE_HU, clean.shape)).astype(np.float32)


def phantom_images(split: str, count: int, size: int, seed: int = 0) -> Iterator[dict]:
    """Renderings of the phantoms of ``split`` (``trainA``, ``trainB``, ``validation``, ``test``).

    Yields:
        Dicts with ``"id"`` and, by split: ``"mr"`` (trainA), ``"ct"`` (trainB,
        noisy), or ``"mr"`` and ``"ct"`` (validation, test: CT noise-free).
    """
    for index in range(count):
        rng = np.random.default_rng((seed, _SPLIT_CODES[split], index))
        labels, texture = draw_phantom(rng, size)
        example = {"id": f"{split}-{index:05d}"}
        if split != "trainB":
            example["mr"] = acquire_mr(render(labels, texture, "mr"), rng)
        if split != "trainA":
            ct = render(labels, texture, "ct")
            example["ct"] = acquire_ct(ct, rng) if split == "trainB" else ct
        yield example


def _ellipse_radius(fine: int, centre, axes, angle: float) -> np.ndarray:
    """Normalised radius of every pixel centre in an ellipse's frame (< 1 inside)."""
    coords = (np.arange(fine) + 0.5) / fine * 2.0 - 1.0
    y, x = np.meshgrid(coords - centre[0], coords - centre[1], indexing="ij")
    u = np.cos(angle) * y + np.sin(angle) * x
    v = -np.sin(angle) * y + np.cos(angle) * x
    return np.hypot(u / axes[0], v / axes[1])


# ----------------------------------------------------------------------------------------------
# Dataset, training, methods.


def write_training_data(folder: Path, settings: Settings) -> Path:
    """Write the unpaired training dataset (or reuse it if built with the same settings)."""
    size, (n_a, n_b, n_validation, _) = settings.image_size, settings.phantoms

    def domain(split, count, key):
        for example in phantom_images(split, count, size):
            yield {"image": example[key][..., np.newaxis], "id": example["id"]}

    splits = {
        "trainA": domain("trainA", n_a, "mr"),
        "trainB": domain("trainB", n_b, "ct"),
        "validationA": domain("validation", n_validation, "mr"),
        "validationB": domain("validation", n_validation, "ct"),
    }
    metadata = {
        "task": "modality conversion",
        "units": {"input": "MR (arbitrary units)", "target": "HU"},
        "window": {
            "input": dict(zip(("base", "range"), MR_WINDOW, strict=True)),
            "target": dict(zip(("base", "range"), CT_WINDOW, strict=True)),
        },
        "simulation": {
            "labels": list(LABELS),
            "ct_hu": CT_HU.tolist(),
            "mr": MR_VALUE.tolist(),
            "texture": TEXTURE,
            "ct_noise_hu": CT_NOISE_HU,
            "mr_noise": MR_NOISE,
            "bias": BIAS,
            "phantoms": list(settings.phantoms),
            "image_size": size,
        },
    }
    description = "MR-like -> CT phantoms, unpaired (trainA: MR, trainB: CT, disjoint)"
    return build_dataset(folder, splits, metadata, description)


def cyclegan_config(dataset: Path, settings: Settings):
    """The `kerastrans.config.Config` of the CycleGAN run (see the module docstring)."""
    from kerastrans.config import Config, DataConfig, ModelConfig, TrainingConfig, Window

    return Config(
        data=DataConfig(
            dataset=str(dataset),
            eval_split="validation",
            input_window=Window(*MR_WINDOW),
            target_window=Window(*CT_WINDOW),
            batch_size=settings.batch_size,
            seed=0,
        ),
        model=ModelConfig(
            kind="cyclegan",
            generator=dict(settings.generator),
            discriminator=dict(settings.discriminator),
            pool_size=50,
            seed=0,
        ),
        losses={"adversarial_loss": "lsgan", "adversarial": 1.0, "cycle": 10.0, "identity": 0.0},
        training=TrainingConfig(
            epochs=settings.epochs,
            steps_per_epoch=settings.steps_per_epoch,
            g_learning_rate=2e-4,
            d_learning_rate=2e-4,
            schedule={"kind": "linear", "decay_start": 0.5},
            checkpoint_every=settings.steps_per_epoch,
            grid_images=4,
        ),
    )


def histogram_reference(dataset: Path, count: int = REFERENCE_IMAGES) -> np.ndarray:
    """Pixels (HU) of the first ``count`` training CT images (``trainB``), flattened."""
    import tensorflow_datasets as tfds

    from kerastrans.data.records import load_builder, read_summary

    count = min(count, read_summary(dataset).splits["trainB"].num_examples)
    images = load_builder(dataset).as_dataset(split=f"trainB[:{count}]")
    return np.concatenate([example["image"].ravel() for example in tfds.as_numpy(images)])


def histogram_matching(mr: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Match each MR image's histogram to the reference CT pixels (HU)."""
    from skimage.exposure import match_histograms

    # Both as one row of pixels: skimage wants arrays of equal rank, not of equal shape.
    matched = [match_histograms(image.reshape(1, -1), reference.reshape(1, -1)) for image in mr]
    return np.stack(matched).reshape(mr.shape).astype(np.float32)


def cyclegan_outputs(run_dir: Path, mr: np.ndarray) -> np.ndarray:
    """The run's A -> B translator applied to the test MR images (HU)."""
    from kerastrans.runs import load_run

    return translate_stack(load_run(run_dir).translator("AtoB"), mr)


def score(method: str, images: np.ndarray, targets: np.ndarray, **extra) -> dict:
    """One results row: PSNR, SSIM, MAE (HU) means over the test images, and ``extra``."""
    from kerastrans.metrics import evaluate

    metrics = evaluate(images, targets)
    return {
        "method": method,
        "psnr": metrics["psnr"],
        "ssim": metrics["ssim"],
        "mae": metrics["mae"],
        "n_test": metrics["n"],
        **extra,
    }


# ----------------------------------------------------------------------------------------------
# Report.


def plot(mr, outputs: dict[str, np.ndarray], ct, rows: list[dict], path: Path) -> None:
    """Sample test images side by side (MR, each method, CT target) and a PSNR bar chart."""
    import matplotlib.pyplot as plt

    samples = range(min(3, len(ct)))
    images = {"MR input": mr, **{k: v for k, v in outputs.items() if k != "identity"}}
    images["CT target"] = ct
    columns = len(images)
    figure = plt.figure(figsize=(2.2 * columns + 4.5, 2.2 * len(samples)), layout="constrained")
    grid = figure.add_gridspec(len(samples), columns + 2)
    for row, index in enumerate(samples):
        for column, (title, stack) in enumerate(images.items()):
            low, high = _SHOW["mr" if title == "MR input" else "ct"]
            axis = figure.add_subplot(grid[row, column])
            axis.imshow(stack[index], cmap="gray", vmin=low, vmax=high)
            axis.set_axis_off()
            axis.set_title(f"{title} #{index}", fontsize=8)
    bars = figure.add_subplot(grid[:, columns:])
    values = [row["psnr"] for row in rows]
    drawn = bars.bar(range(len(rows)), values, color=[f"C{i}" for i in range(len(rows))])
    bars.bar_label(drawn, fmt="%.2f", fontsize=7)
    goal = _row(rows, "histogram matching")["psnr"] + GOAL_DB
    bars.axhline(goal, color="k", linestyle="--", linewidth=0.8, label=f"goal {goal:.1f} dB")
    bars.set_xticks(range(len(rows)), [row["method"] for row in rows], fontsize=7)
    bars.set_ylabel("PSNR (dB), MR -> CT")
    bars.set_title(f"test phantoms (n = {rows[0]['n_test']})")
    bars.legend(fontsize=7)
    save_figure(figure, path)


def verdict(rows: list[dict]) -> str:
    """One line: the goal (CycleGAN >= histogram matching + `GOAL_DB`), met or not."""
    baseline, model = _row(rows, "histogram matching")["psnr"], _row(rows, "cyclegan")["psnr"]
    state = "met" if model - baseline >= GOAL_DB else "NOT met"
    return (
        f"goal: cyclegan at least {GOAL_DB:+.1f} dB PSNR over histogram matching "
        f"({baseline + GOAL_DB:.2f} dB); measured {model:.2f} dB ({model - baseline:+.2f} dB): "
        f"{state}"
    )


def _row(rows: list[dict], method: str) -> dict:
    return next(row for row in rows if row["method"] == method)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--steps",
        type=int,
        default=SETTINGS["full"].steps,
        help="CycleGAN training steps, rounded up to whole epochs of 250 (default "
        "%(default)s: about 15 minutes; 25000: under 2 hours)",
    )
    add_work_arguments(parser, NAME)
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    logging.getLogger("absl").setLevel(logging.ERROR)
    if args.quick:
        settings, work = SETTINGS["quick"], args.work.with_name(f"{args.work.name}-quick")
    else:
        settings, work = dataclasses.replace(SETTINGS["full"], steps=args.steps), args.work

    dataset = write_training_data(work / "dataset", settings)
    run_dir = train(cyclegan_config(dataset, settings), work / "cyclegan")

    test = list(phantom_images("test", settings.phantoms[3], settings.image_size))
    mr, ct = (np.stack([example[key] for example in test]) for key in ("mr", "ct"))
    outputs = {
        "identity": mr,
        "histogram matching": histogram_matching(mr, histogram_reference(dataset)),
        "cyclegan": cyclegan_outputs(run_dir, mr),
    }
    from kerastrans.training import read_finished

    steps = read_finished(run_dir)["global_step"]
    training = {
        "train_images": settings.phantoms[0] + settings.phantoms[1],
        "train_steps": steps,
        "batch_size": settings.batch_size,
        **train_timing(run_dir, steps),
    }
    rows = [
        score(method, images, ct, **(training if method == "cyclegan" else {}))
        for method, images in outputs.items()
    ]
    print()
    print_table(rows)
    print(f"\n{verdict(rows)}")
    if args.quick:
        plot(mr, outputs, ct, rows, work / f"{NAME}.png")
        print(f"\nquick run: figure {work / f'{NAME}.png'}, nothing written to {RESULTS}")
        return 0
    plot(mr, outputs, ct, rows, RESULTS / f"{NAME}.png")
    arguments = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(["python", f"benchmarks/{NAME}.py", *arguments])
    print(write_results(NAME, command, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
