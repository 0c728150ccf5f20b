"""Inference speed of ``kerastrans convert`` on 512 x 512 DICOM slices vs the bare model call.

Usage::

    python benchmarks/convert.py [--n-slices 32] [--batch-size 8] [--repeats 5] [--work DIR]
    python benchmarks/convert.py --quick    # 4 slices, batch 2, 1 repeat; nothing in results/

Protocol. A run directory is made the way ``kerastrans fit`` makes one: the
default pix2pix (U-Net of 4 levels, 32-256 channels) trained for one step on
a tiny paired 64 x 64 dataset in HU (`_training.train`; speed does not depend
on the weights), then exported as a SavedModel (`kerastrans.export.export_run`).
The input folder holds ``N`` copies of pydicom-data's ``693_UNCI.dcm``
(512 x 512 head CT, 16-bit, uncompressed). In each repeat, interleaved so
that load from other jobs on this shared 2-core machine hits all alike:

- ``bare SavedModel call``: the loaded SavedModel
  (`kerastrans.export.load_exported`) called on the ``N`` slices preloaded in
  memory as float32 HU, in batches of 8 (``convert``'s default batch size);
- ``convert, SavedModel, DICOM out``: `kerastrans.convert.convert` (what the
  CLI calls) with that loaded model, from the DICOM folder to derived DICOM
  files: find, read and decode, batch, model, write, in its reader, model and
  writer threads; ``NPY out`` writes float32 ``.npy`` instead;
- the same two for the Keras run directory (`kerastrans.runs.load_run`),
  which is what ``kerastrans convert RUN_DIR`` uses.

Times are medians over repeats (wall ``seconds``, process ``cpu_seconds``)
after one warm-up call of each model (tracing; convert calls the same loaded
objects; the DICOM files are in the page cache, having just been written and
preloaded). ``overhead_pct`` is the median over repeats of ``convert / bare
- 1`` from the same repeat (wall time); ``cpu_overhead_pct`` is the same from
process CPU time, which other jobs on the machine disturb far less (the load
average is printed before and after).
``model_share_pct`` is the share of convert's wall time spent in model calls
(`ConversionSummary.model_seconds`). Model loading is not in these rows (a
one-off per invocation); the ``CLI process`` row times one whole
``kerastrans convert`` process on the SavedModel (Python and TensorFlow
start-up, loading, converting) once, after the repeats, and ``startup_s`` is
its time minus the median library convert. The serial ``read`` and ``write``
rows time reading every DICOM file (`kerastrans.io.read_slices`) and writing
every derived DICOM (`kerastrans.io.write_derived_dicom`) alone, in one
thread: the I/O work that convert overlaps with the model.

Goal: convert's I/O overhead over the bare SavedModel call under 10 %.

Memory rows (``--memory-only`` runs just these): one ``kerastrans convert``
process per row on the SavedModel, on 2 slices of ``N x N`` (``693_UNCI.dcm``
enlarged by repeating pixels): ``whole-N`` translates each slice whole (512,
1024, 2048: the sizes that fit), ``tiled-4096`` uses ``--tile 512`` (overlap
0.25). ``peak_mib`` is the process's peak resident memory as it reports it
itself at exit (``VmHWM`` of ``/proc/self/status``: ``wait4``'s ``ru_maxrss``
would count this benchmark's own memory at the fork), ``slices_per_s`` as
convert prints it. Goal: ``tiled-4096``
under 3 GiB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import RESULTS, print_table, save_figure, write_results
from _training import add_work_arguments, train

NAME = "convert"
SOURCE = "693_UNCI.dcm"
GOAL_PCT = 10.0
#: Memory rows: (method, slice side, --tile or None).
MEMORY_ROWS = (
    ("whole-512", 512, None),
    ("whole-1024", 1024, None),
    ("whole-2048", 2048, None),
    ("tiled-4096", 4096, 512),
)
GOAL_PEAK_MIB = 3 * 1024


# -- set-up: run directory, SavedModel, DICOM folder --------------------------------------------


def make_run(work: Path) -> Path:
    """A default pix2pix run directory, trained 1 step on 4 random 64 x 64 pairs in HU."""
    from kerastrans.config import Config, DataConfig, TrainingConfig
    from kerastrans.data import write_dataset

    rng = np.random.default_rng(0)
    pairs = []
    for index in range(4):
        target = rng.normal(0.0, 300.0, (64, 64, 1)).astype(np.float32)
        noisy = target + rng.normal(0.0, 50.0, target.shape).astype(np.float32)
        pairs.append({"input": noisy, "target": target, "id": f"pair{index}"})
    dataset = write_dataset(
        work / "dataset", {"train": pairs}, metadata={"units": "HU"}, progress=False
    ).path
    config = Config(
        data=DataConfig(dataset=str(dataset), batch_size=2, seed=0),
        training=TrainingConfig(epochs=1, steps_per_epoch=1, grid_images=0),
    )
    return train(config, work / "run", progress=False)


def make_saved_model(run_dir: Path, work: Path) -> Path:
    """Export the run's generator as a SavedModel (reused if it exists)."""
    from kerastrans.export import export_run, find_saved_model

    return find_saved_model(work / "saved_model") or export_run(run_dir, work / "saved_model")


def make_dicom_folder(folder: Path, n_slices: int) -> Path:
    """``n_slices`` copies of the 512 x 512 head CT ``693_UNCI.dcm`` (those present are reused)."""
    from pydicom.data import get_testdata_file

    from kerastrans.atomic import atomic_path

    source = get_testdata_file(SOURCE)
    for index in range(n_slices):
        target = folder / f"slice_{index:04d}.dcm"
        if not target.exists():
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
    return folder


def make_large_dicom_folder(folder: Path, size: int, n_slices: int = 2) -> Path:
    """``n_slices`` copies of ``693_UNCI.dcm`` enlarged to ``size x size`` (pixels repeated)."""
    import pydicom
    from pydicom.data import get_testdata_file

    folder.mkdir(parents=True, exist_ok=True)
    dataset = pydicom.dcmread(get_testdata_file(SOURCE))
    factor = size // int(dataset.Rows)
    pixels = np.kron(dataset.pixel_array, np.ones((factor, factor), dataset.pixel_array.dtype))
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.PixelData = pixels.tobytes()
    for index in range(n_slices):
        target = folder / f"slice_{index:04d}.dcm"
        if not target.exists():
            dataset.SOPInstanceUID = pydicom.uid.generate_uid()
            dataset.save_as(target)
    return folder


#: Runs the command line and prints its own peak resident memory at exit.
_PEAK_PROBE = """\
import atexit, runpy, sys
def peak():
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM"))
    print(f"peak_kib {kib}", flush=True)
atexit.register(peak)
sys.argv = ["kerastrans", *sys.argv[1:]]
runpy.run_module("kerastrans.cli.main", run_name="__main__")
"""


def memory_rows(saved_model: Path, work: Path) -> list[dict]:
    """Peak memory and speed of one ``kerastrans convert`` process per size (whole or tiled)."""
    rows = []
    for method, size, tile in MEMORY_ROWS:
        inputs = make_large_dicom_folder(work / f"dicom-{size}", size)
        outputs = work / "out" / method
        shutil.rmtree(outputs, ignore_errors=True)
        command = [sys.executable, "-c", _PEAK_PROBE, "convert", str(saved_model),
                   str(inputs), str(outputs), "--batch-size", "2", "--no-progress"]  # fmt: skip
        if tile is not None:
            command += ["--tile", str(tile)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        stdout = process.stdout.read()
        process.wait()
        if process.returncode:
            raise RuntimeError(f"{method}: convert exited {process.returncode}: {stdout}")
        speed = next(line for line in stdout.splitlines() if "slices/s" in line)
        rows.append({
            "method": method,
            "peak_mib": int(stdout.rsplit("peak_kib ", 1)[1].split()[0]) / 1024,
            "slices_per_s": float(speed.split(" slices/s")[0].split(", ")[-1]),
            "size": size,
            "tile": tile or 0,
            "n_slices": len(list(outputs.glob("*.dcm"))),
        })  # fmt: skip
        shutil.rmtree(outputs, ignore_errors=True)
    return rows


# -- timing -------------------------------------------------------------------------------------


def bare_call(translator, slices: np.ndarray, batch_size: int) -> Callable[[], None]:
    """The model alone on preloaded slices, batch by batch, outputs as NumPy as convert does."""

    def run() -> None:
        for start in range(0, len(slices), batch_size):
            np.asarray(translator(slices[start : start + batch_size]), dtype=np.float32)

    return run


def convert_call(translator, inputs: Path, outputs: Path, output_format: str, batch_size: int):
    """`kerastrans.convert.convert` into a fresh folder; return its model seconds."""
    from kerastrans.convert import convert

    def run() -> float:
        shutil.rmtree(outputs, ignore_errors=True)
        summary = convert(
            translator,
            inputs,
            outputs,
            batch_size=batch_size,
            output_format=output_format,
            progress=False,
        )
        if summary.errors or summary.slices != summary.files:
            raise RuntimeError(f"convert failed: {summary.errors}")
        return summary.model_seconds

    return run


def interleaved(candidates: dict[str, Callable], repeats: int) -> dict[str, dict[str, list]]:
    """Wall and CPU seconds (and model seconds) of each candidate, alternating.

    The output folder is removed inside each convert call, before it starts: that
    deletion is in the timed call but takes milliseconds for a few dozen files.
    """
    times = {name: {"wall": [], "cpu": [], "model": []} for name in candidates}
    for _ in range(repeats):
        for name, function in candidates.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            model_seconds = function() or 0.0
            times[name]["wall"].append(time.perf_counter() - start)
            times[name]["cpu"].append(time.process_time() - start_cpu)
            times[name]["model"].append(model_seconds)
    return times


def paired_overhead_pct(times: dict, name: str, reference: str, key: str) -> float:
    """Median over repeats of ``name / reference - 1`` in percent (same-repeat pairs)."""
    ratios = [a / b - 1 for a, b in zip(times[name][key], times[reference][key], strict=True)]
    return 100 * statistics.median(ratios)


def serial_io_rows(inputs: Path, outputs: Path, repeats: int) -> list[dict]:
    """Read every DICOM file, and write every derived DICOM, alone in one thread."""
    from pydicom.uid import generate_uid

    from kerastrans.io import find_images, read_slices, write_derived_dicom

    files = find_images(inputs)
    pixels = read_slices(files[0])[0].pixels
    series = generate_uid()

    def read() -> None:
        for path in files:
            read_slices(path)

    def write() -> None:
        shutil.rmtree(outputs, ignore_errors=True)
        outputs.mkdir(parents=True)
        for path in files:
            write_derived_dicom(outputs / path.name, pixels, path, series_uid=series)

    rows = []
    for method, function in (
        ("read DICOM, serial (no model)", read),
        ("write derived DICOM, serial (no model)", write),
    ):
        times = interleaved({method: function}, repeats)[method]
        rows.append(row(method, len(files), times))
    shutil.rmtree(outputs, ignore_errors=True)
    return rows


def cli_row(
    saved_model: Path, inputs: Path, outputs: Path, batch_size: int, convert_seconds: float
) -> dict:
    """One whole ``kerastrans convert`` process on the SavedModel, start-up included."""
    shutil.rmtree(outputs, ignore_errors=True)
    command = [
        str(Path(sys.executable).with_name("kerastrans")),
        "convert",
        str(saved_model),
        str(inputs),
        str(outputs),
        "--batch-size",
        str(batch_size),
        "--no-progress",
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    n_slices = len(list(outputs.glob("*.dcm")))
    shutil.rmtree(outputs, ignore_errors=True)
    return {
        "method": "kerastrans convert CLI process, SavedModel, DICOM out",
        "slices_per_s": n_slices / seconds,
        "seconds": seconds,
        "startup_s": seconds - convert_seconds,
        "n_slices": n_slices,
    }


def row(method: str, n_slices: int, times: dict[str, list], **extra: float) -> dict:
    """A results row: slices/s, median wall and CPU seconds for ``n_slices``, ``extra`` keys."""
    seconds = statistics.median(times["wall"])
    return {
        "method": method,
        "slices_per_s": n_slices / seconds,
        "seconds": seconds,
        "cpu_seconds": statistics.median(times["cpu"]),
        **extra,
        "n_slices": n_slices,
    }


def measure(work: Path, n_slices: int, batch_size: int, repeats: int) -> list[dict]:
    """Every row: bare and convert for the SavedModel and the run directory, I/O, CLI."""
    from kerastrans.export import load_exported
    from kerastrans.io import find_images, read_slices
    from kerastrans.runs import load_run

    run_dir = make_run(work)
    saved_model = make_saved_model(run_dir, work)
    inputs = make_dicom_folder(work / f"dicom{n_slices}", n_slices)
    slices = np.stack([read_slices(path)[0].pixels for path in find_images(inputs)])
    exported, keras_translator = load_exported(saved_model), load_run(run_dir).translator()
    out = work / "out"
    candidates = {
        "saved_model": bare_call(exported, slices, batch_size),
        "saved_model_dcm": convert_call(exported, inputs, out / "dcm", "same", batch_size),
        "saved_model_npy": convert_call(exported, inputs, out / "npy", "npy", batch_size),
        "keras": bare_call(keras_translator, slices, batch_size),
        "keras_dcm": convert_call(keras_translator, inputs, out / "keras", "same", batch_size),
    }
    methods = {
        "saved_model": ("bare SavedModel call", None),
        "saved_model_dcm": ("kerastrans convert, SavedModel, DICOM out", "saved_model"),
        "saved_model_npy": ("kerastrans convert, SavedModel, NPY out", "saved_model"),
        "keras": ("bare Keras translator call (run dir)", None),
        "keras_dcm": ("kerastrans convert, run dir, DICOM out", "keras"),
    }
    for name in ("saved_model", "keras"):  # warm-up: tracing, thread pools (shared with convert)
        candidates[name]()
    times = interleaved(candidates, repeats)
    rows = []
    for name, (method, reference) in methods.items():
        extra = {}
        if reference is not None:
            model = statistics.median(times[name]["model"])
            extra = {
                "overhead_pct": paired_overhead_pct(times, name, reference, "wall"),
                "cpu_overhead_pct": paired_overhead_pct(times, name, reference, "cpu"),
                "model_share_pct": 100 * model / statistics.median(times[name]["wall"]),
            }
        rows.append(row(method, n_slices, times[name], **extra, batch_size=batch_size))
    rows += serial_io_rows(inputs, out / "serial", repeats)
    convert_seconds = statistics.median(times["saved_model_dcm"]["wall"])
    rows.append(cli_row(saved_model, inputs, out / "cli", batch_size, convert_seconds))
    return rows + memory_rows(saved_model, work)


# -- report -------------------------------------------------------------------------------------


def plot(rows: list[dict], path: Path) -> Path:
    """Horizontal bars of slices/s, labelled with the overhead over the bare call."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    positions = np.arange(len(rows))[::-1]
    colors = [_color(r["method"]) for r in rows]
    bars = axis.barh(positions, [r["slices_per_s"] for r in rows], color=colors)
    labels = [f"{r['slices_per_s']:.2f}" for r in rows]
    for index, r in enumerate(rows):
        if "overhead_pct" in r:
            labels[index] += f"  ({r['overhead_pct']:+.1f} %)"
    axis.bar_label(bars, labels, padding=3, fontsize=8)
    axis.set_yticks(positions, [r["method"] for r in rows], fontsize=8)
    axis.set_xscale("log")
    axis.set_xlabel("512 x 512 slices per second (log scale); (+x %): overhead over the bare call")
    axis.set_title(f"kerastrans convert vs the bare model call, {rows[0]['n_slices']} slices")
    axis.set_xlim(right=axis.get_xlim()[1] * 4)
    return save_figure(figure, path)


def _color(method: str) -> str:
    """Blue for the bare calls, green for the serial I/O, orange for convert."""
    return "C0" if "bare" in method else "C2" if "serial" in method else "C1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-slices", type=int, default=32, help="DICOM slices converted (32)")
    parser.add_argument(
        "--batch-size", type=int, default=8, help="slices per model call (8, convert's default)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (5)")
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="only the peak-memory rows (whole-N, tiled-4096); prints, writes no results",
    )
    add_work_arguments(parser, NAME)
    args = parser.parse_args(argv)
    if args.memory_only:
        saved_model = make_saved_model(make_run(args.work), args.work)
        rows = memory_rows(saved_model, args.work)
        print_table(rows)
        tiled = next(r for r in rows if r["method"] == "tiled-4096")
        verdict = "met" if tiled["peak_mib"] < GOAL_PEAK_MIB else "NOT met"
        print(f"goal (tiled-4096 peak < {GOAL_PEAK_MIB} MiB): {verdict}: {tiled['peak_mib']:.0f}")
        return 0
    n_slices, batch_size, repeats = args.n_slices, args.batch_size, args.repeats
    work = args.work
    if args.quick:
        n_slices, batch_size, repeats = 4, 2, 1
        work = work.with_name(work.name + "-quick")
    load = os.getloadavg()[0]
    rows = measure(work, n_slices, batch_size, repeats)
    print_table(rows)
    print(
        f"\nload average (1 min) before / after: {load:.1f} / {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores (above the core count, wall times are noisy: see CPU)"
    )
    main_row = next(r for r in rows if r["method"].startswith("kerastrans convert, SavedModel"))
    verdict = "met" if main_row["overhead_pct"] < GOAL_PCT else "NOT met"
    print(
        f"goal (convert overhead over the bare SavedModel call < {GOAL_PCT:.0f} %): {verdict}: "
        f"{main_row['overhead_pct']:+.1f} % wall, {main_row['cpu_overhead_pct']:+.1f} % CPU, "
        f"model calls {main_row['model_share_pct']:.0f} % of convert's time"
    )
    if args.quick:
        print(plot(rows, work / f"{NAME}.png"))
        return 0
    plot(rows, RESULTS / f"{NAME}.png")
    command = (
        f"python benchmarks/convert.py --n-slices {n_slices} --batch-size {batch_size} "
        f"--repeats {repeats}"
    )
    print(write_results(NAME, command, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
