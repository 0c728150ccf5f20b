"""The simulation library: the command line and the demo are thin layers over it."""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from kerastrans.cli.main import main
from kerastrans.data.records import load_builder, read_metadata
from kerastrans.simulation import (
    NOTHING_TO_WRITE,
    ellipses_simulation,
    lowdose_records,
    lowdose_simulation,
    open_source,
    source_geometry,
)
from kerastrans.tomo.geometry import GeometrySpec
from kerastrans.tomo.phantoms import random_ellipses
from kerastrans.tomo.simulate import lowdose_examples

SIZES = {"train": 2, "validation": 1, "test": 0}


def _records(dataset, split):
    builder = load_builder(dataset)
    return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


def test_lowdose_simulation_writes_what_the_command_writes(tmp_path):
    flags = ["--image-size", "16", "--num-angles", "8", "--photons", "500", "--seed", "3"]
    sizes = [f"--{split}={n}" for split, n in SIZES.items()]
    cli = tmp_path / "cli"
    assert main(["simulate", "lowdose", "--out", str(cli), *flags, *sizes, "--no-progress"]) == 0

    source = open_source("ellipses", sizes=SIZES, image_size=16, seed=3, hounsfield=True)
    simulation = lowdose_simulation(
        source, source_geometry(source, num_angles=8), photons=500.0, seed=3
    )
    library = simulation.write(tmp_path / "library", progress=False)

    assert read_metadata(library.path) == read_metadata(cli)
    for split in ("train", "validation"):
        ours, theirs = _records(library.path, split), _records(cli, split)
        assert [r["id"] for r in ours] == [r["id"] for r in theirs]
        for mine, other in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(mine["input"], other["input"])
            np.testing.assert_array_equal(mine["target"], other["target"])


def test_lowdose_records_project_on_the_oversampled_grid():
    images = [
        (f"e{i}", 1000.0 * (v - 1.0)) for i, v in enumerate(random_ellipses(2, 0, shape=(16, 16)))
    ]
    geometry = GeometrySpec((16, 16), extent=(16.0, 16.0), num_angles=12)
    ours = list(
        lowdose_records(
            images, geometry, photons=300.0, random_state=np.random.default_rng(1), oversample=2.0
        )
    )
    expected = list(
        lowdose_examples(
            images,
            geometry,
            photons=300.0,
            random_state=np.random.default_rng(1),
            simulation_shape=(32, 32),
        )
    )
    for mine, other in zip(ours, expected, strict=True):
        np.testing.assert_array_equal(mine["input"], other["input"])


def test_a_simulation_without_examples_is_refused(tmp_path):
    with pytest.raises(ValueError, match=f"^{NOTHING_TO_WRITE}$"):
        ellipses_simulation({"train": 0}).write(tmp_path / "empty")
    assert not (tmp_path / "empty").exists()


def test_importing_the_simulation_library_loads_neither_tensorflow_nor_odl():
    code = (
        "import sys, kerastrans.simulation, kerastrans.cli.simulate; "
        "print(sorted({'tensorflow', 'tensorflow_datasets', 'odl'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
