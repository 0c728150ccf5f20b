"""``kerastrans fit --model lpd|lgd|fbp-unet`` on ``kerastrans simulate`` datasets, and export."""

import numpy as np
import pytest

from kerastrans.cli.main import main
from kerastrans.config import load_config
from kerastrans.data.geometry import geometry_from_dataset
from kerastrans.export import load_exported
from kerastrans.runs import load_run

#: Small unrolled networks and U-Nets, so that runs take seconds.
TINY = ["model.iterations=2", "model.unrolled_channels=4", "model.primal_memory=2",
        "model.dual_memory=2", "model.generator.depth=2",
        "model.generator.base_channels=4"]  # fmt: skip


def _refused(command: list[str], capsys) -> str:
    """The one line with which ``kerastrans`` refuses ``command`` as a usage error."""
    with pytest.raises(SystemExit) as exit_info:
        main(command)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


@pytest.fixture(scope="module")
def sparseview(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "sparse"
    args = ["simulate", "sparseview", "--out", str(out), "--train", "4", "--validation", "2",
            "--test", "0", "--image-size", "32", "--num-angles", "10", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    return out


@pytest.mark.parametrize("kind", ["lpd", "lgd", "fbp-unet"])
def test_fit_reads_the_geometry_from_the_dataset_and_exports(kind, sparseview, tmp_path):
    run = tmp_path / "run"
    command = ["fit", "--model", kind, "--data", str(sparseview), "--out", str(run),
               "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2",
               "--no-progress", *TINY]  # fmt: skip
    assert main(command) == 0
    config = load_config(run / "config.yaml")
    assert config.model.geometry == geometry_from_dataset(sparseview).to_dict()
    assert config.model.input_shape == (10, 47, 1)
    assert config.model.output_shape == (32, 32, 1)
    assert main(["export", str(run), "--out", str(tmp_path / "served")]) == 0
    exported = load_exported(tmp_path / "served")
    assert exported.input_shape == (10, 47, 1)
    translator = load_run(run).translator("AtoB")
    sinograms = np.random.default_rng(0).uniform(0, 0.3, (2, 10, 47, 1)).astype(np.float32)
    np.testing.assert_allclose(
        exported(sinograms).numpy(), translator(sinograms).numpy(), rtol=1e-5, atol=1e-5
    )


def test_dataset_without_geometry_is_a_one_line_error(tmp_path, capsys):
    root = tmp_path / "pairs"
    for folder in ("trainA", "trainB"):
        (root / folder).mkdir(parents=True)
        for index in range(2):
            np.save(root / folder / f"slice{index}.npy", np.zeros((32, 32), np.float32))
    assert main(["records", str(root), "--paired", "--out", str(root / "dataset")]) == 0
    capsys.readouterr()
    command = ["fit", "--model", "lpd", "--data", str(root / "dataset"), "--out",
               str(tmp_path / "run"), "--epochs", "1", "--no-progress"]  # fmt: skip
    assert main(command) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "dataset: metadata has no 'geometry' entry" in lines[0]
    assert "was the dataset written by 'kerastrans simulate'?" in lines[0]


def test_automap_starts_from_the_datasets_fbp(sparseview, tmp_path):
    run = tmp_path / "run"
    command = ["fit", "--model", "automap", "--data", str(sparseview), "--out", str(run),
               "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--no-progress",
               "model.fc_layers=1", "model.fc_activation=none", "model.fbp_init=true",
               "model.fbp_frequency_scaling=0.5", "model.generator.base_channels=4",
               "model.generator.max_channels=4", "model.fc_learning_rate_scale=0.02"]  # fmt: skip
    assert main(command) == 0
    config = load_config(run / "config.yaml")
    assert config.model.geometry == geometry_from_dataset(sparseview).to_dict()
    model = load_run(run).model
    fbp_init = model.get_config()["fbp_init"]
    assert (fbp_init["filter_type"], fbp_init["frequency_scaling"]) == ("Hann", 0.5)
    assert model.generator.get_config()["residual_output"] is True  # corrects the FBP image
    # The FC layer learns at 0.02 x the rate: stored as FBP / 0.02, applied as FBP.
    assert model.generator.encoder.get_layer("fc0").learning_rate_scale == 0.02


def test_automap_fc_rate_scale_must_be_positive(sparseview, tmp_path, capsys):
    command = ["fit", "--model", "automap", "--data", str(sparseview), "--out",
               str(tmp_path / "run"), "--epochs", "1", "--no-progress",
               "model.fc_learning_rate_scale=0"]  # fmt: skip
    line = _refused(command, capsys)
    assert "model.fc_learning_rate_scale must be > 0, got 0.0" in line


def test_fbp_unet_takes_the_fbp_filter_and_cut_off(sparseview, tmp_path):
    run = tmp_path / "run"
    command = ["fit", "--model", "fbp-unet", "--data", str(sparseview), "--out", str(run),
               "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--no-progress",
               "model.fbp_filter=Shepp-Logan", "model.fbp_frequency_scaling=0.5",
               *TINY]  # fmt: skip
    assert main(command) == 0
    fbp = load_run(run).model.generator.get_layer("fbp")
    assert (fbp.filter_type, fbp.frequency_scaling) == ("Shepp-Logan", 0.5)


@pytest.mark.parametrize("scaling", ["0", "1.5"])
def test_fbp_cut_off_outside_0_1_is_refused(sparseview, tmp_path, capsys, scaling):
    command = ["fit", "--model", "fbp-unet", "--data", str(sparseview), "--out",
               str(tmp_path / "run"), "--epochs", "1", "--no-progress",
               f"model.fbp_frequency_scaling={scaling}"]  # fmt: skip
    line = _refused(command, capsys)
    assert f"model.fbp_frequency_scaling must be in (0, 1], got {float(scaling)}" in line


@pytest.mark.parametrize(
    ("kind", "options", "named"),
    [
        ("lpd", ["data.augment.flip_left_right=true"], "flip_left_right"),
        ("fbp-unet", ["data.augment.rotation=10", "data.augment.scale=0.1"], "rotation, scale"),
        ("automap", ["--crop", "8", "8"], "crop"),
    ],
)
def test_geometric_augmentation_of_sinogram_pairs_is_refused(
    kind, options, named, sparseview, tmp_path, capsys
):
    run = tmp_path / "run"
    command = ["fit", "--model", kind, "--data", str(sparseview), "--out", str(run),
               "--epochs", "1", "--no-progress", *options]  # fmt: skip
    line = _refused(command, capsys)
    assert f"{kind} maps its input (e.g. a sinogram) onto an image of another geometry" in line
    assert f"so {named} would move input and target differently" in line
    assert not (run / "config.yaml").exists()


def test_noise_augmentation_of_sinogram_pairs_trains(sparseview, tmp_path):
    run = tmp_path / "run"
    command = ["fit", "--model", "lgd", "--data", str(sparseview), "--out", str(run),
               "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--no-progress",
               "data.augment.noise_std=0.01", *TINY]  # fmt: skip
    assert main(command) == 0
    assert load_config(run / "config.yaml").data.augment.noise_std == 0.01


def test_fbp_unet_learns_a_correction_of_the_fbp_image(sparseview, tmp_path):
    """As FBPConvNet: the U-Net adds a correction to the FBP image, so training starts at FBP."""
    from kerastrans.training.build import build_model

    run = tmp_path / "run"
    command = ["fit", "--model", "fbp-unet", "--data", str(sparseview), "--out", str(run),
               "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--no-progress",
               *TINY]  # fmt: skip
    assert main(command) == 0
    config = load_config(run / "config.yaml")
    assert config.model.generator.residual_output is True
    assert config.model.generator.out_activation == "none"
    network = build_model(config).generator  # untrained: the correction is still zero
    shape = (2, *network.input_shape[1:])
    sinograms = np.random.default_rng(0).uniform(-1, 1, shape).astype("float32")
    fbp = np.asarray(network.get_layer("fbp")(sinograms), np.float32)
    assert np.abs(fbp).max() > 0.1
    np.testing.assert_allclose(np.asarray(network(sinograms)), fbp, atol=1e-6)
