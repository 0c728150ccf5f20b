"""The demo's whole chain on tiny settings: dataset, training, evaluation, export, DICOM."""

import pytest

from kerastrans.demo import SETTINGS, main


@pytest.mark.slow
def test_quick_demo_builds_every_output_then_reuses_them(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--settings", "quick"]) == 0
    out = capsys.readouterr().out
    quick = SETTINGS["quick"]
    tests = 4 + quick.phantoms[2]  # 4 noise draws of the real test slice + phantoms
    assert f"all test images            {tests} images" in out
    assert "bias (HU, mean of output - target; soft tissue: target in -200..200 HU)" in out
    assert out.count("soft tissue ") == 3  # one line per group of test images
    assert (tmp_path / "run" / "finished.json").is_file()
    assert len((tmp_path / "evaluation" / "metrics.csv").read_text().splitlines()) == tests + 2
    assert (tmp_path / "saved_model" / "1" / "saved_model.pb").is_file()
    assert len(list((tmp_path / "dicom_denoised").glob("*.dcm"))) == 5

    assert main(["--out", str(tmp_path), "--settings", "quick"]) == 0  # everything is reused
    again = capsys.readouterr().out
    assert "(reused)" in again and "finished run reused" in again
    assert again.count("exists, reused") == 2
