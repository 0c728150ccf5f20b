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

import collections
import concurrent.futures
import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.uid import generate_uid
from tqdm.auto import tqdm

from kerastrans import manifest
from kerastrans.errors import DataError, file_error
from kerastrans.io import (
    IMAGE_SUFFIXES,
    Slice,
    find_images,
    read_slices,
    write_derived_dicom,
    write_image,
)
from kerastrans.io.dicom import DICOM_SUFFIXES, is_dicom_file, read_dataset
from kerastrans.io.series import order_dicom_files
from kerastrans.loading import load_translator
from kerastrans.stacking import stack_slices
from kerastrans.tiling import auto_tiled
from kerastrans.translate import ImageTranslator, shape_mismatch, translate_in_batches

__all__ = ["FORMATS", "ConversionSummary", "convert"]

#: Output formats: ``same`` keeps DICOM as DICOM, NPY as NPY, TIFF as float32
#: TIFF and writes PNG/JPEG as 16-bit PNG.
FORMATS = ("same", "dcm", "png16", "npy")
#: File suffix written for each kind of output (`None`: the source's name).
_SUFFIX = {"dcm": None, "png16": ".png", "tif": ".tif", "npy": ".npy"}
#: Kind written for ``same`` by source suffix (DICOM is recognised separately).
_SAME_KIND = {".tif": "tif", ".tiff": "tif", ".npy": "npy"}


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
        translator = load_translator(model, direction, version=version)
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
    job = _Conversion(auto_tiled(translator, batch_size), root, output_format, on_error, state)
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


@dataclasses.dataclass(frozen=True)
class _Source:
    """One input slice and where its output goes."""

    path: Path
    index: int
    count: int
    kind: str
    destination: Path
    series_uid: str | None
    done: bool = False


@dataclasses.dataclass(frozen=True)
class _Read:
    """A file read in the background: its slices, or the error."""

    path: Path
    slices: list[Slice]
    error: str | None
    dicom: bool


class _Conversion:
    """State of one `convert` run: counters, errors, series UIDs, claimed outputs."""

    def __init__(
        self, translator, root: Path, output_format: str, on_error, state: manifest.ConversionState
    ):
        self.translator = translator
        self.root = root
        self.output_dir = state.output_dir
        self.output_format = output_format
        self.on_error = on_error
        self.state = state
        self.bar: Any = None
        self.files = self.slices = self.skipped = 0
        self.model_seconds = 0.0
        self.errors: list[str] = []
        self.series_uids: dict[str, str] = {}
        self.claimed: dict[Path, Path] = {}
        window = getattr(translator, "output_window", None)
        #: The model's output `Window` (written as the outputs' DICOM display window).
        self.output_window = window
        #: Whether outputs keep their source's display window: a model between two domains
        #: of one window (CT -> CT) keeps the units, so the source's reading window still fits
        #: (the full-range CT window, -1024..3071 HU, would show soft tissue flat grey).
        self.keep_source_window = window is not None and window == getattr(
            translator, "input_window", None
        )
        #: png16 stores round(value - intercept): the window's low end if negative.
        self.png_intercept = 0.0 if window is None else float(min(0, math.floor(window.low)))
        self._header: tuple[Path, Any] | None = None
        #: 2.5D: neighbours on each side stacked as channels, and the frame order per file.
        self.neighbours = int(getattr(translator, "neighbours", 0))
        self.frame_orders: dict[Path, list[int]] = {}
        height, width, channels = translator.input_shape
        if channels % (2 * self.neighbours + 1):
            raise ValueError(
                f"a 2.5D model with neighbours={self.neighbours} takes a multiple of "
                f"{2 * self.neighbours + 1} input channels, got {channels}"
            )
        self.slice_shape = (height, width, channels // (2 * self.neighbours + 1))

    def order(self, files: list[Path]) -> list[Path]:
        """DICOM files in series and slice order (headers only), then the other files."""
        dicom = [path for path in files if path.suffix.lower() in DICOM_SUFFIXES
                 or is_dicom_file(path)]  # fmt: skip
        ordered = order_dicom_files(dicom)
        self.frame_orders = {path: frames for path, frames in ordered}
        return [path for path, _ in ordered] + [path for path in files if path not in set(dicom)]

    def run(self, files: list[Path], batch_size: int, progress: bool) -> None:
        """Read, translate and write ``files``, overlapping the three."""
        bar = tqdm(total=len(files), desc="converting", unit="file", disable=not progress)
        with (
            concurrent.futures.ThreadPoolExecutor(1, "kerastrans-read") as reader,
            concurrent.futures.ThreadPoolExecutor(1, "kerastrans-write") as writer,
            bar,
        ):
            self.bar = bar
            reads = _prefetched(reader, _read, files, depth=2 * batch_size)
            pending: collections.deque = collections.deque()
            stacks = stack_slices(self._slices(reads, bar), self.neighbours)
            outputs = translate_in_batches(self._model, stacks, batch_size)
            for source, output in outputs:
                pending.append(writer.submit(self._write, source, output))
                while len(pending) > 2 * batch_size:
                    self._collect(pending.popleft())
            while pending:
                self._collect(pending.popleft())
            bar.set_postfix(slices=self.slices)

    def _model(self, batch: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        outputs = np.asarray(self.translator(batch), dtype=np.float32)
        self.model_seconds += time.perf_counter() - start
        return outputs

    def _slices(self, reads: Iterable[_Read], bar) -> Iterator[tuple[_Source, np.ndarray, Any]]:
        """The slices of the readable files: where the output goes, the pixels, the series."""
        for read in reads:
            bar.update()
            sources = self._sources(read) if read.error is None else read.error
            if isinstance(sources, str):
                self._report(sources)
                continue
            pairs = list(zip(sources, read.slices, strict=True))
            todo = [pairs[frame] for frame in self.frame_orders.get(read.path, range(len(pairs)))
                    if not pairs[frame][0].done]  # fmt: skip
            self.skipped += len(sources) - len(todo)
            self.files += bool(todo)
            for source, item in todo:
                yield source, item.pixels, item.series

    def _sources(self, read: _Read) -> list[_Source] | str:
        """Where each slice of ``read`` goes, or the one-line reason the file is refused."""
        for item in read.slices:
            problem = shape_mismatch(item.pixels.shape, self.slice_shape)
            if problem:
                return str(file_error(item.id, problem))
        kind = _kind(read.path, read.dicom, self.output_format)
        if kind == "dcm" and not read.dicom:
            return str(file_error(read.path, "DICOM output needs a DICOM source (its header)"))
        relative = read.path.relative_to(self.root)
        count = len(read.slices)
        sources = []
        for item in read.slices:
            # Slice ids are "<path>#<frame>" for multi-frame files (see kerastrans.io.Slice).
            index = int(item.id[len(str(read.path)) + 1 :]) if count > 1 else 0
            destination = self.output_dir / _output_name(relative, kind, index, count)
            other = self.claimed.setdefault(destination, read.path)
            if other != read.path:
                return str(file_error(read.path, f"output {destination} is already {other}'s"))
            uid = None
            if kind == "dcm":  # one new series per source series (or folder, without a UID)
                key = item.series or f"folder:{read.path.parent.relative_to(self.root)}"
                if key not in self.series_uids:  # the same after a resume: seeded by the token
                    self.series_uids[key] = generate_uid(entropy_srcs=[self.state.token, key])
                uid = self.series_uids[key]
            done = self.state.resumed and destination.is_file()
            sources.append(_Source(read.path, index, count, kind, destination, uid, done))
        return sources

    def _write(self, source: _Source, pixels: np.ndarray) -> str | None:
        """Write one output (in the writer thread); return the error line, if any."""
        try:
            if source.kind == "dcm":
                write_derived_dicom(
                    source.destination,
                    pixels,
                    self._dicom_source(source),
                    series_uid=source.series_uid,
                    frame=source.index if source.count > 1 else None,
                    window=None if self.keep_source_window else self.output_window,
                    default_window=self.output_window,
                    instance_number=source.index + 1 if source.count > 1 else None,
                )
            elif source.kind == "png16":
                write_image(source.destination, pixels, intercept=self.png_intercept)
            elif source.kind == "tif":
                write_image(source.destination, pixels, dtype="float32")
            else:
                write_image(source.destination, pixels)
        except DataError as error:
            return str(error)
        except (ValueError, OSError) as error:
            where = f"{source.path}#{source.index}" if source.count > 1 else source.path
            return str(file_error(where, f"cannot write {source.destination}: {error}"))
        return None

    def _dicom_source(self, source: _Source) -> Any:
        """The header to derive from: the file, read once for all frames of a multi-frame one."""
        if source.count == 1:
            return source.path
        if self._header is None or self._header[0] != source.path:
            self._header = (source.path, read_dataset(source.path, pixels=False))
        return self._header[1]

    def _collect(self, future: concurrent.futures.Future) -> None:
        error = future.result()
        if error is None:
            self.slices += 1
            self.bar.set_postfix(slices=self.slices, refresh=False)
        else:
            self._report(error)

    def _report(self, line: str) -> None:
        self.errors.append(line)
        if self.on_error is not None:
            self.on_error(line)


def _read(path: Path) -> _Read:
    """Read one file's slices (in the reader thread), catching its error."""
    dicom = path.suffix.lower() in DICOM_SUFFIXES or is_dicom_file(path)
    try:
        return _Read(path, read_slices(path), None, dicom)
    except DataError as error:
        return _Read(path, [], str(error), dicom)
    except OSError as error:
        return _Read(path, [], str(file_error(path, f"cannot read: {error}")), dicom)


def _prefetched(executor, function, items: list, *, depth: int) -> Iterator:
    """``function(item)`` for each item, computed up to ``depth`` items ahead in ``executor``."""
    pending: collections.deque = collections.deque()
    for item in items:
        pending.append(executor.submit(function, item))
        if len(pending) >= depth:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


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


def _kind(path: Path, dicom: bool, output_format: str) -> str:
    """What to write for ``path``: ``"dcm"``, ``"png16"``, ``"tif"`` or ``"npy"``."""
    if output_format != "same":
        return output_format
    if dicom:
        return "dcm"
    return _SAME_KIND.get(path.suffix.lower(), "png16")


def _output_name(relative: Path, kind: str, index: int, count: int) -> Path:
    """Output path (relative) of slice ``index`` of ``count`` read from ``relative``.

    >>> _output_name(Path("a/ct.dcm"), "png16", 0, 1).as_posix()
    'a/ct.png'
    >>> _output_name(Path("a/1.2.840.5"), "dcm", 3, 10).as_posix()
    'a/1.2.840.5_0003'
    """
    if relative.suffix.lower() in IMAGE_SUFFIXES:
        stem, suffix = relative.stem, relative.suffix
    else:  # no suffix, or a DICOM UID name whose last number is not a suffix
        stem, suffix = relative.name, ""
    frame = f"_{index:04d}" if count > 1 else ""
    return relative.with_name(f"{stem}{frame}{_SUFFIX[kind] or suffix}")
