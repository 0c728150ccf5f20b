"""Real CT slices that ship with pydicom and pydicom-data, as a small denoising set.

Five distinct axial CT slices from five patients (head, neck, pancreas) are
the only real CT images installed with the project's dependencies; they are
read in HU with `kerastrans.io` (RescaleSlope/Intercept applied; JPEG 2000 and
JPEG lossless decoded). Each example pairs a noisy input (the slice plus
white Gaussian noise of ``noise_std`` HU, seeded per file) with the clean
slice as target: a stand-in for low-dose -> normal-dose CT that needs no
download. With ``noise_std=0`` input and target are the same image.

Left out on purpose: ``693_J2KI``/``693_J2KR``/``693_UNCR`` (the same slice as
``693_UNCI`` in other encodings), ``eCT_Supplemental`` (a perfusion map, not
HU anatomy) and the 16 x 16 thumbnails of pydicom's DICOMDIR tests.
"""

from __future__ import annotations

import os
import zlib

import numpy as np

from kerastrans.data.recipes._write import write_recipe
from kerastrans.data.records import DatasetSummary
from kerastrans.errors import DataError

__all__ = ["FILES", "VERSION", "build_pydicom_ct", "source_path"]

VERSION = "1.0.0"
#: Source files per split, with what they show (file name: description).
FILES = {
    "train": {
        "693_UNCI.dcm": "head, 512 x 512, uncompressed (pydicom-data)",
        "J2K_pixelrep_mismatch.dcm": "head, 512 x 512, JPEG 2000 lossless (pydicom)",
        "bad_sequence.dcm": "neck, 512 x 512, JPEG lossless (pydicom-data)",
        "explicit_VR-UN.dcm": "pancreas, 512 x 512, JPEG 2000 lossless (pydicom-data)",
    },
    "test": {
        "CT_small.dcm": "body, 128 x 128, uncompressed (pydicom)",
    },
}


def source_path(name: str) -> str:
    """Local path of a pydicom/pydicom-data test file, never downloading it.

    Raises:
        DataError: If the file is not installed (pydicom-data missing).
    """
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        raise DataError(
            f"{name}: not installed; it ships with pydicom or pydicom-data "
            "(pip install pydicom-data)"
        )
    return os.fspath(path)


def build_pydicom_ct(
    out_dir: str | os.PathLike,
    *,
    noise_std: float = 50.0,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> DatasetSummary:
    """Write the real-CT dataset (splits ``train``: 4 slices, ``test``: 1) to ``out_dir``.

    Args:
        out_dir: Dataset folder; an existing dataset is reused unless ``overwrite``.
        noise_std: Standard deviation of the noise added to the input, HU.
        seed: Seed of the noise (combined with each file name).
        overwrite: Rebuild an existing dataset.
        progress: Show progress bars.

    Returns:
        The summary of the dataset written (or found).
    """
    from kerastrans.io import read_image

    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0 HU, got {noise_std}")

    def examples(split: str):
        for name in FILES[split]:
            clean = read_image(source_path(name))
            rng = np.random.default_rng((seed, zlib.crc32(name.encode())))
            noise = rng.normal(0.0, noise_std, clean.shape).astype(np.float32)
            yield {"input": clean + noise, "target": clean, "id": f"pydicom:{name}"}

    metadata = {
        "source": "real CT slices shipped with pydicom and pydicom-data",
        "files": FILES,
        "noise_std_hu": noise_std,
        "seed": seed,
    }
    return write_recipe(
        out_dir,
        {split: examples(split) for split in FILES},
        name="pydicom_ct",
        version=VERSION,
        doc=__doc__,
        metadata=metadata,
        overwrite=overwrite,
        progress=progress,
    )
