"""Translate folders of images with a trained model: DICOM in, DICOM out.

`convert` finds every image under a folder (`kerastrans.io.find_images`),
translates it in physical units and writes the result under the output folder
with the same relative path:

- DICOM gives a derived DICOM slice (`kerastrans.io.write_derived_dicom`):
  the source header, a new SOP Instance UID, one new SeriesInstanceUID per
  source series, a RescaleSlope/Intercept that keeps negative HU; as display
  window the source's where the model keeps the units (input and output share
  one window, e.g. CT -> CT), else the model's output window. A multi-frame
  file gives one classic slice per frame, named ``<name>_0000.dcm``,
  ``<name>_0001.dcm``, ... (one derived series, InstanceNumber = frame + 1;
  NPY stacks likewise ``<name>_0000.npy``);
- ``png16``: 16-bit PNG of ``round(value - intercept)``, where the intercept
  is the output window's low end rounded down when it is negative (e.g.
  -1024 for CT), else 0; the summary states it;
- ``npy``: float32, exact; TIFF input with ``"same"``: float32 TIFF, exact.

Reading runs in a background thread, the model in the calling thread
(batches of equal-sized slices, one traced graph per size) and writing in a
second thread, so I/O overlaps inference. Files that cannot be read,
translated or written are reported one line each and skipped, never
silently; each output file is written atomically.

The output folder holds a manifest (`kerastrans.manifest`) that says
``"complete": false`` until the end. Rerunning an interrupted conversion with
the same input, model, direction and format resumes it: outputs already
written are kept and the others written (see `ConversionSummary.skipped`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

from kerastrans import manifest
from kerastrans.conversion import Conversion
from kerastrans.errors import file_error
from kerastrans.io import find_images
from kerastrans.loading import load_translator
from kerastrans.tiling import auto_tiled
from kerastrans.translate import ImageTranslator

__all__ = ["FORMATS", "ConversionSummary", "convert"]

#: Output formats: ``same`` keeps DICOM as DICOM, NPY as NPY, TIFF as float32
#: TIFF and writes PNG/JPEG as 16-bit PNG.
FORMATS = ("same", "dcm", "png16", "npy")


@dataclasses.dataclass(frozen=True)
class ConversionSummary:
    """What `convert` did.

    Attributes:
        output_dir: The output folder.
        files: Input files read and translated.
        slices: Slices written.
        seconds: Wall time of the conversion (reading, model, writing).
        model_seconds: Time spent in model calls.
        errors: One line per file (or slice) that failed, ``"<path>: <problem>"``.
        ignored: Files under the input folder that are not images.
        png_intercept: For ``png16`` output, the value stored as 0.
        skipped: Slices already written by an interrupted run of the same
            conversion, kept (a resumed conversion).
    """

    output_dir: Path
    files: int
    slices: int
    seconds: float
    model_seconds: float
    errors: tuple[str, ...] = ()
    ignored: int = 0
    png_intercept: float | None = None
    skipped: int = 0

    @property
    def slices_per_second(self) -> float:
        """Slices written per second of wall time."""
        return self.slices / self.seconds if self.seconds > 0 else math.inf

    def format(self) -> str:
        """A short human-readable report (one line per fact)."""
        share = 100 * self.model_seconds / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"{self.files} files, {self.slices} slices -> {self.output_dir}",
            f"{self.seconds:.1f} s, {self.slices_per_second:.2f} slices/s "
            f"(model calls {share:.0f} % of the time)",
        ]
        if self.skipped:
            lines.append(f"resumed: {self.skipped} slices already written were kept")
        if self.png_intercept is not None:
            lines.append(f"png16: value = stored + ({self.png_intercept:g})")
        if self.ignored:
            lines.append(f"{self.ignored} files are not images and were left out")
        if self.errors:
            lines.append(f"{len(self.errors)} failed (see the messages above)")
        return "\n".join(lines)


def convert(
    model: ImageTranslator | str | os.PathLike,
    input_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    batch_size: int = 8,
    output_format: str = "same",
    direction: str = "AtoB",
    version: int | None = None,
    which: str = "auto",
    overwrite: bool = False,
    progress: bool = True,
    on_error: Callable[[str], None] | None = None,
) -> ConversionSummary:
    """Translate every image under ``input_path`` and write it under ``output_dir``.

    Args:
        model: A translator (`kerastrans.translate.Translator`, an exported
            model) or the path of a run directory or exported SavedModel.
            Images over `kerastrans.tiling.AUTO_TILE_PIXELS` are translated in
            tiles; pass a `kerastrans.tiling.TiledTranslator` to choose them.
        input_path: A folder (searched recursively) or one image file.
        output_dir: Where outputs go, with the inputs' relative paths. It must
            be empty, absent or the output of an interrupted run of the same
            conversion (which is resumed) unless ``overwrite``, and not
            inside the input.
        batch_size: Slices per model call (slices of equal size are batched).
        output_format: One of `FORMATS`.
        direction: ``"AtoB"``, or ``"BtoA"`` for a CycleGAN run directory or a
            SavedModel exported with that direction; a translator object
            that records another direction is refused.
        version: Version folder when ``model`` is a model folder of
            numbered SavedModels; by default the highest.
        which: The epoch's model of a run directory: ``"auto"``, ``"best"``
            or ``"latest"`` (see `kerastrans.runs.load_run`).
        overwrite: Write into a non-empty ``output_dir``, replacing files.
        progress: Show a progress bar.
        on_error: Called with each error line as it happens (the CLI prints
            it); the lines are also in the summary.

    Returns:
        The `ConversionSummary`; failed files are in ``errors``.

    Raises:
        ValueError: For a bad ``batch_size``, ``output_format`` or
            ``direction``, or an ``output_dir`` inside the input folder.
        FileExistsError: If ``output_dir`` is not empty and not ``overwrite``.
        DataError: If ``input_path`` holds no images, ``model`` cannot be
            loaded or does not hold ``direction``, or ``output_dir`` cannot
            be written or holds another conversion's output.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if output_format not in FORMATS:
        raise ValueError(f"output_format must be one of {FORMATS}, got {output_format!r}")
    input_path, output_dir = Path(input_path), Path(output_dir)
    root, files = _inputs(input_path)
    _check_output_dir(output_dir, root if input_path.is_dir() else None)
    if isinstance(model, (str, os.PathLike)):
        translator = load_translator(model, direction, version=version, which=which)
    elif which != "auto":
        raise ValueError(f"which={which!r} picks the model of a run directory, not of {model!r}")
    elif getattr(model, "direction", direction) != direction:
        raise ValueError(f"the model translates {model.direction}, not {direction}")
    else:
        translator = model
    settings = {
        "input": os.fspath(input_path.resolve()),
        "model": manifest.fingerprint(translator),
        "direction": direction,
        "format": output_format,
    }
    state = manifest.begin(output_dir, settings, overwrite=overwrite)
    ignored = _count_ignored(root, files) if input_path.is_dir() else 0
    job = Conversion(auto_tiled(translator, batch_size), root, output_format, on_error, state)
    if job.neighbours:  # 2.5D: read series by series in slice order, to stack neighbours
        files = job.order(files)
    start = time.perf_counter()
    job.run(files, batch_size, progress)
    manifest.finish(
        state, {"files": job.files, "slices": job.slices + job.skipped, "failed": len(job.errors)}
    )
    return ConversionSummary(
        output_dir=output_dir,
        files=job.files,
        slices=job.slices,
        seconds=time.perf_counter() - start,
        model_seconds=job.model_seconds,
        errors=tuple(job.errors),
        ignored=ignored,
        png_intercept=job.png_intercept if output_format == "png16" else None,
        skipped=job.skipped,
    )


def _inputs(input_path: Path) -> tuple[Path, list[Path]]:
    """The root that relative paths start from, and the image files to convert."""
    if input_path.is_file():
        return input_path.parent, [input_path]
    if not input_path.exists():
        raise file_error(input_path, "no such file or folder")
    return input_path, find_images(input_path)


def _check_output_dir(output_dir: Path, input_dir: Path | None) -> None:
    if input_dir is not None and output_dir.resolve().is_relative_to(input_dir.resolve()):
        raise ValueError(
            f"output_dir must not be inside the input folder {input_dir}, got {output_dir}"
        )


def _count_ignored(root: Path, images: list[Path]) -> int:
    """Visible files under ``root`` that are not among ``images``."""
    found = set(images)
    return sum(
        1
        for path in root.rglob("*")
        if path.is_file()
        and path not in found
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )
