"""Config of the data pipeline: windows, augmentation, batching."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from kerastrans.config._convert import _check, _coerce_fields


@dataclasses.dataclass(frozen=True)
class Window:
    """A display/training window in physical units: ``[base, base + range] -> [-1, 1]``.

    Values below ``base`` map to -1 and values above ``base + range`` to +1
    (clipped); the map is affine in between, so it has an exact inverse there.
    A network with a bounded output (tanh) therefore cannot give values
    outside the window of its output domain. The defaults are the full CT
    range, -1024..3071 HU.

    Args:
        base: Lower end of the window in physical units (HU for CT); default
            -1024.
        range: Width of the window in the same units; must be > 0; default
            4095.

    A window is this one type everywhere (config, models, losses, DICOM
    output); the other conventions are views of it: ``(low, high)``
    (`from_bounds`, `low`, `high`) and DICOM's ``(center, width)``
    (`from_center_width`, `center`, `width`). A model's ``get_config`` stores
    it as the dict ``{"base", "range"}`` (`dataclasses.asdict`), which
    `from_value` reads back.

    >>> Window(base=-1000, range=2000).high
    1000.0
    >>> Window.from_center_width(40, 400)
    Window(base=-160.0, range=400.0)
    >>> Window.from_bounds(-160, 240).center
    40.0
    """

    base: float = -1024.0
    range: float = 4095.0

    def __post_init__(self) -> None:
        _coerce_fields(self)
        _check(
            self.range > 0,
            f"window range must be > 0 (width of [base, base + range]), got {self.range}",
        )

    @property
    def low(self) -> float:
        """The value mapped to -1 (``base``)."""
        return self.base

    @property
    def high(self) -> float:
        """The value mapped to +1 (``base + range``)."""
        return self.base + self.range

    @property
    def center(self) -> float:
        """The value mapped to 0: DICOM's WindowCenter."""
        return self.base + self.range / 2

    @property
    def width(self) -> float:
        """``high - low`` (``range``): DICOM's WindowWidth."""
        return self.range

    @classmethod
    def from_center_width(cls, center: float, width: float) -> Window:
        """Build a window from the DICOM convention (WindowCenter, WindowWidth).

        DICOM windows are display windows; for CT they are too narrow to train on.
        """
        return cls(base=float(center) - float(width) / 2, range=float(width))

    @classmethod
    def from_bounds(cls, low: float, high: float) -> Window:
        """Build a window from ``(low, high)``: ``low -> -1``, ``high -> +1``.

        Raises:
            ValueError: Unless ``low < high``.
        """
        low, high = float(low), float(high)
        _check(low < high, f"window needs low < high, got ({low:g}, {high:g})")
        return cls(base=low, range=high - low)

    @classmethod
    def from_value(cls, value: Window | Mapping[str, Any], name: str = "window") -> Window:
        """A `Window`, or one from its dict ``{"base", "range"}`` (as a ``get_config`` stores it).

        Args:
            value: The window or its dict.
            name: The argument's name, for the error message.

        Raises:
            TypeError: For any other value (a bare pair is refused: it could be
                ``(low, high)``, ``(base, range)`` or ``(center, width)``).
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping) and set(value) == {"base", "range"}:
            return cls(**value)
        raise TypeError(f'{name} must be a Window or {{"base": ..., "range": ...}}, got {value!r}')


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation applied in training, identically to both images of a pair.

    Geometric transforms share their random parameters between input and
    target; noise is added to the input only. All defaults are "off".

    Args:
        flip_left_right: Mirror columns with probability 1/2.
        flip_up_down: Mirror rows with probability 1/2.
        rotation: Largest rotation in degrees; the angle is uniform in
            ``[-rotation, rotation]``.
        scale: Largest relative zoom; the factor is uniform in
            ``[1 - scale, 1 + scale]``. Must be in ``[0, 1)``.
        translation: Largest shift as a fraction of the image size (per axis),
            uniform in ``[-translation, translation]``. Must be in ``[0, 1)``.
        noise_std: Standard deviation of Gaussian noise added to the input, in
            the input's physical units (HU for CT); converted through the input
            window.
        interpolation: ``"bilinear"`` or ``"nearest"`` (use nearest for label
            targets); the same for input and target.
        fill_mode: How rotation/scaling/translation fill pixels from outside
            the image: ``"constant"`` (the window's low end, -1), ``"nearest"``,
            ``"reflect"`` or ``"wrap"``.
    """

    flip_left_right: bool = False
    flip_up_down: bool = False
    rotation: float = 0.0
    scale: float = 0.0
    translation: float = 0.0
    noise_std: float = 0.0
    interpolation: Literal["bilinear", "nearest"] = "bilinear"
    fill_mode: Literal["constant", "nearest", "reflect", "wrap"] = "constant"

    def __post_init__(self) -> None:
        _coerce_fields(self)
        _check(
            0 <= self.rotation <= 180,
            f"augment rotation must be in [0, 180] degrees, got {self.rotation}",
        )
        _check(0 <= self.scale < 1, f"augment scale must be in [0, 1), got {self.scale}")
        _check(
            0 <= self.translation < 1,
            f"augment translation must be in [0, 1), got {self.translation}",
        )
        _check(self.noise_std >= 0, f"augment noise_std must be >= 0, got {self.noise_std}")

    @property
    def affine(self) -> bool:
        """Whether rotation, scaling or translation is enabled."""
        return bool(self.rotation or self.scale or self.translation)

    @property
    def geometric(self) -> tuple[str, ...]:
        """The enabled augmentations that move pixels (all but noise), by field name."""
        moving = ("flip_left_right", "flip_up_down", "rotation", "scale", "translation")
        return tuple(name for name in moving if getattr(self, name))

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is enabled."""
        return self.affine or self.flip_left_right or self.flip_up_down or self.noise_std > 0


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What the tf.data pipeline reads and how it prepares batches.

    Args:
        dataset: Folder of the TFDS-format dataset (built by
            `kerastrans.data.records.write_dataset` or ``kerastrans records``);
            `None` when the dataset is given separately.
        train_split: Split read for training (``"train"``; for an unpaired
            dataset the domains are ``<split>A`` and ``<split>B``).
        eval_split: Split read for evaluation (validation during training).
        validation: Folder of the dataset whose ``eval_split`` validates
            training; `None`: ``dataset`` (``kerastrans fit`` records the
            folder it used, or `None` when there was no such split).
        input_window: Window of the input domain (domain A), physical units;
            `None`: chosen from the dataset
            (`kerastrans.training.resolve.default_windows`) by
            `kerastrans.training.resolve.resolve_config`, which ``kerastrans
            fit`` and `kerastrans.training.fit` call, so a run's config.yaml
            records the window it trained with.
        target_window: Window of the target domain (domain B), physical
            units; `None` as for ``input_window``.
        augment: Random augmentation in training.
        batch_size: Global batch size (split across replicas).
        crop: ``(height, width)`` of the random training patch, in input
            pixels; `None` trains on whole images. Images smaller than the patch
            are padded first. Not applied in evaluation.
        pad_multiple: Pad every image (bottom and right, with the window's low
            end) so that height and width are multiples of this, for networks
            that halve the size several times; 1 = no padding. The original size
            is kept so that outputs can be cropped back.
        neighbours: 2.5D: number of neighbouring slices of the same series
            stacked on each side of the input slice as extra channels (0 = 2D).
        seed: Seed of shuffling and augmentation; with a seed the pipeline is
            deterministic. `None` = fresh randomness every run.
        shuffle_buffer: Number of examples in the shuffle buffer.
    """

    dataset: str | None = None
    train_split: str = "train"
    eval_split: str = "test"
    validation: str | None = None
    input_window: Window | None = None
    target_window: Window | None = None
    augment: AugmentConfig = AugmentConfig()
    batch_size: int = 1
    crop: tuple[int, int] | None = None
    pad_multiple: int = 1
    neighbours: int = 0
    seed: int | None = None
    shuffle_buffer: int = 256

    def __post_init__(self) -> None:
        _coerce_fields(self)
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        if self.crop is not None:
            _check(
                len(self.crop) == 2 and all(size >= 1 for size in self.crop),
                f"crop must be (height, width) with sizes >= 1, got {self.crop}",
            )
        _check(self.pad_multiple >= 1, f"pad_multiple must be >= 1, got {self.pad_multiple}")
        _check(self.neighbours >= 0, f"neighbours must be >= 0, got {self.neighbours}")
        _check(self.shuffle_buffer >= 1, f"shuffle_buffer must be >= 1, got {self.shuffle_buffer}")
        if self.seed is not None:
            _check(0 <= self.seed < 2**31, f"seed must be in [0, 2**31), got {self.seed}")

    def windows(self) -> tuple[Window, Window]:
        """``(input_window, target_window)``, refused while either is left to the dataset.

        Raises:
            ValueError: If a window is `None` (not yet resolved).
        """
        for name in ("input_window", "target_window"):
            _check(
                getattr(self, name) is not None,
                f"data.{name} is None (chosen from the dataset): resolve the config first "
                "(kerastrans.training.resolve_config) or give the window",
            )
        return self.input_window, self.target_window


#: Models `ModelConfig.kind` can name.
