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
from collections.abc import Iterable, Iterator

import numpy as np

from kerastrans.data.recipes._write import write_recipe
from kerastrans.data.records import DatasetSummary
from kerastrans.errors import DataError

__all__ = ["FILES", "VERSION", "build_pydicom_ct", "real_ct_slices", "source_path"]

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


def real_ct_slices(
    names: Iterable[str], image_size: int, *, air: float = -1000.0
) -> Iterator[tuple[str, np.ndarray, tuple[float, float]]]:
    """Yield real CT slices in HU, block-averaged to about ``image_size``, ready to simulate.

    Each slice (a file of pydicom/pydicom-data, see `FILES`) is read in HU,
    averaged over ``k x k`` blocks with ``k = rows // image_size`` (at least
    1, so a small slice keeps its size) and floored at ``air``: the padding
    outside a scanner's field of view (down to -3000 HU) becomes air, as a
    simulated projection would see it there.

    Args:
        names: File names, e.g. ``FILES["test"]``.
        image_size: Wanted side in pixels (512-pixel slices and ``image_size``
            128 give 128 x 128; ``CT_small.dcm`` stays 128 x 128).
        air: Floor in HU.

    Yields:
        ``(name, image, extent)``: the float32 image ``(rows, columns)`` in HU
        and its physical size ``(rows, columns)`` in mm (pixel spacing x
        pixels x ``k``; 1 mm pixels when the file has no spacing).

    Raises:
        ValueError: If ``image_size`` is < 1.
        DataError: If a file is not installed or cannot be read.
    """
    from skimage.transform import downscale_local_mean

    from kerastrans.io import read_slices

    if image_size < 1:
        raise ValueError(f"image_size must be >= 1 pixel, got {image_size}")
    for name in names:
        image = read_slices(source_path(name))[0]
        pixels, spacing = image.pixels[..., 0], image.spacing or (1.0, 1.0)
        factor = max(pixels.shape[0] // image_size, 1)
        pixels = downscale_local_mean(pixels, (factor, factor)) if factor > 1 else pixels
        pixels = np.maximum(pixels, air).astype(np.float32)
        extent = tuple(n * s * factor for n, s in zip(pixels.shape, spacing, strict=True))
        yield name, pixels, extent


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
