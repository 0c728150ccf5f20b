"""One run of `kerastrans.convert.convert`: read, translate and write in three threads.

Reading runs in a background thread, the model in the calling thread
(batches of equal-sized slices) and writing in a second thread. Each slice
gets its destination (the input's relative path, a frame number for
multi-frame files), a derived series UID for DICOM output (seeded by the
conversion's token, so a resumed run gives the same UIDs) and is skipped when
a resumed run already wrote it.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import math
import time
from collections.abc import Iterable, Iterator
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
    read_slices,
    write_derived_dicom,
    write_image,
)
from kerastrans.io.dicom import is_dicom, read_dataset
from kerastrans.io.series import order_dicom_files
from kerastrans.stacking import stack_slices
from kerastrans.translate import shape_mismatch, translate_in_batches

__all__ = ["Conversion"]

#: File suffix written for each kind of output (`None`: the source's name).
_SUFFIX = {"dcm": None, "png16": ".png", "tif": ".tif", "npy": ".npy"}
#: Kind written for ``same`` by source suffix (DICOM is recognised separately).
_SAME_KIND = {".tif": "tif", ".tiff": "tif", ".npy": "npy"}


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


class Conversion:
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
        dicom = [path for path in files if is_dicom(path)]
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
    dicom = is_dicom(path)
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
