"""``benchmarks/_training.py``: the wall time and stolen CPU time of a run, over resumes."""

import json

import pytest


@pytest.fixture(scope="module")
def training(benchmark):
    return benchmark("_training")


def _stat(path, total, stolen):
    """Write a ``/proc/stat`` whose CPUs have run ``total`` jiffies, ``stolen`` of them stolen."""
    # user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
    path.write_text(f"cpu  {total - stolen} 0 0 0 0 0 0 {stolen} 7 7\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
    return path


def test_cpu_jiffies_sums_the_first_eight_fields_and_reads_the_steal(training, tmp_path):
    assert training.cpu_jiffies(_stat(tmp_path / "stat", 1000, 100)) == (1000, 100)
    assert training.cpu_jiffies(tmp_path / "absent") is None


def test_wall_clock_sums_time_and_steal_over_resumed_sessions(training, tmp_path):
    stat, run = _stat(tmp_path / "stat", 0, 0), tmp_path / "run"
    run.mkdir()
    # (total, stolen) at the end of each epoch: epochs of 1000 jiffies stealing 0, 300, 0, 300.
    readings = iter([(1000, 0), (2000, 300), (3000, 300), (4000, 600)])
    for _ in range(2):  # a killed run resumed: a new callback each session
        clock = training.WallClock(run, stat=stat)
        clock.on_train_begin()
        for epoch in range(2):
            _stat(stat, *next(readings))
            clock.on_epoch_end(epoch)
    record = json.loads((run / "train_seconds.json").read_text())
    assert (record["cpu_jiffies"], record["stolen_jiffies"]) == (4000, 600)
    timing = training.train_timing(run, steps=200)
    assert timing["cpu_steal"] == pytest.approx(0.15)
    assert timing["train_hours"] == pytest.approx(record["seconds"] / 3600)
    assert timing["ms_per_step"] == pytest.approx(record["seconds"] * 1000 / 200)


def test_a_run_timed_before_steal_was_recorded_reports_none(training, tmp_path):
    (tmp_path / "train_seconds.json").write_text(json.dumps({"seconds": 7200.0}))
    timing = training.train_timing(tmp_path, steps=8000)
    assert timing == {"train_hours": 2.0, "ms_per_step": 900.0, "cpu_steal": None}
