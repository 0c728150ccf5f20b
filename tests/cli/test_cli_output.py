"""What ``kerastrans`` writes around the work: no start-up noise; plain progress in a pipe."""

import re

import numpy as np
import pytest

from kerastrans.cli._quiet import drop_noise
from kerastrans.cli.fit import build_config
from kerastrans.cli.main import build_parser, parse_arguments

#: Lines of TensorFlow, absl and TensorFlow Datasets that every command used to print.
NOISE = re.compile(
    r"oneDNN|cuInit|FeatureConnector|absl::InitializeLog|remapper|^[IWE]\d{4} |^WARNING:absl",
    re.MULTILINE,
)
TINY = ["model.generator.depth=2", "model.generator.base_channels=4",
        "model.discriminator.base_channels=4", "model.discriminator.depth=1"]  # fmt: skip


@pytest.fixture(scope="module")
def npy_source(tmp_path_factory):
    """trainA/trainB/testA/testB folders of 16 x 16 NPY slices."""
    root = tmp_path_factory.mktemp("source")
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("test", 2)):
        for domain in "AB":
            (root / f"{split}{domain}").mkdir()
            for index in range(count):
                image = rng.normal(-500.0, 300.0, (16, 16)).astype(np.float32)
                np.save(root / f"{split}{domain}" / f"slice{index}.npy", image)
    return root


def test_commands_start_quiet_and_progress_in_a_pipe_is_plain(npy_source, tmp_path, run_cli):
    help_ = run_cli(["fit", "--help"])
    assert help_.returncode == 0 and help_.stderr == ""

    data = tmp_path / "data"
    records = run_cli(["records", npy_source, "--paired", "--out", data])
    assert records.returncode == 0, records.stderr
    assert not NOISE.search(records.stderr), records.stderr

    fit = run_cli(["fit", "--data", data, "--out", tmp_path / "run", "--epochs", "2",
                   "--steps-per-epoch", "3", "--batch-size", "2", *TINY])  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    assert not NOISE.search(fit.stderr), fit.stderr
    # stdout is a pipe: no escape codes, no carriage returns, one line per epoch.
    assert "\x1b" not in fit.stdout and "\r" not in fit.stdout and "\b" not in fit.stdout
    epochs = re.findall(r"^3/3 - \d+s - .*g_loss: .*$", fit.stdout, re.MULTILINE)
    assert len(epochs) == 2, fit.stdout
    assert "Epoch 1/2\n" in fit.stdout and "Epoch 2/2\n" in fit.stdout


def test_only_the_known_start_up_lines_are_dropped():
    noise = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796177627.625108    6753 port.cc:153] oneDNN custom operations are on. "
        "You may see slightly different numerical results due to floating-point round-off.\n"
        "E0000 00:00:1796177640.462128    6845 cuda_platform.cc:52] failed call to cuInit: "
        "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n"
    )
    other = "E0000 00:00:1796177640.5 6845 some_op.cc:1] something the user must see\n"
    assert drop_noise(noise + other + noise) == other


@pytest.mark.parametrize(
    "arguments",
    [
        ["--model", "pix2pix", "--data", "D", "--out", "R", "--epochs", "1", "losses.l1=50"],
        ["losses.l1=50", "--data", "D", "--out", "R", "data.seed=7"],
        ["--data", "D", "--set", "data.seed=7", "losses.l1=50", "--out", "R", "--epochs", "1"],
        ["--data", "D", "losses.l1=50", "--epochs", "1", "--out", "R", "--set", "data.seed=7"],
    ],
    ids=["after-options", "before-and-after", "after-set", "between-options"],
)
def test_overrides_are_taken_anywhere_among_the_options(arguments):
    # A window is given: no dataset is read for its default.
    args = parse_arguments(build_parser(), ["fit", *arguments, "--window", "-1000", "2000"])
    assert args.data == "D" and str(args.out) == "R"
    config = build_config(args)
    assert config.losses.l1 == 50
    if "data.seed=7" in arguments:
        assert config.data.seed == 7


def test_unknown_options_are_still_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_arguments(build_parser(), ["fit", "--out", "R", "a.b=1", "--bogus", "c.d=2"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
