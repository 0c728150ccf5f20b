"""PNG, JPEG, TIFF and NPY: bit depth kept on read, exact round trips, safe loading."""

from __future__ import annotations

import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

import kerastrans.io.images
from kerastrans.errors import DataError
from kerastrans.io import read_image, read_slices, write_image


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_values_survive_round_trip(tmp_path, suffix):
    values = np.array([[0, 1, 255], [256, 40000, 65535]], dtype=np.float32)
    write_image(tmp_path / f"x{suffix}", values)
    pixels = read_image(tmp_path / f"x{suffix}")
    assert pixels.dtype == np.float32 and pixels.shape == (2, 3, 1)
    np.testing.assert_array_equal(pixels[..., 0], values)


@pytest.mark.parametrize(("suffix", "channels"), [(".png", 3), (".png", 2), (".tif", 3)])
def test_8bit_multichannel_round_trip(tmp_path, suffix, channels):
    values = np.random.default_rng(0).integers(0, 256, (5, 7, channels)).astype(np.float32)
    write_image(tmp_path / f"x{suffix}", values, dtype="uint8")
    np.testing.assert_array_equal(read_image(tmp_path / f"x{suffix}"), values)


@pytest.mark.parametrize("channels", [2, 3, 4, 6])
def test_16bit_multichannel_tiff_round_trip(tmp_path, channels):
    values = np.random.default_rng(3).integers(0, 65536, (4, 5, channels)).astype(np.float32)
    write_image(tmp_path / "x.tiff", values)
    np.testing.assert_array_equal(read_image(tmp_path / "x.tiff"), values)


def test_lzw_tiff_without_imagecodecs_keeps_16_bits(tmp_path):
    values = np.array([[40000, 1], [3, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    np.testing.assert_array_equal(read_image(tmp_path / "lzw.tif")[..., 0], values)


def test_float32_tiff_is_exact(tmp_path):
    values = np.random.default_rng(4).normal(size=(4, 5)).astype(np.float32)
    write_image(tmp_path / "x.tif", values, dtype="float32")
    np.testing.assert_array_equal(read_image(tmp_path / "x.tif")[..., 0], values)


def test_slope_and_intercept_map_hounsfield_units_to_uint16(tmp_path):
    hu = np.array([[-1024.0, -1000.4], [0.0, 3071.0]])
    write_image(tmp_path / "ct.png", hu, intercept=-1024)
    stored = read_image(tmp_path / "ct.png")[..., 0]
    np.testing.assert_array_equal(stored, [[0, 24], [1024, 4095]])
    assert np.abs(stored - 1024 - hu).max() <= 0.5


def test_values_that_do_not_fit_give_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"map to stored \[-1000, 10\].*outside uint16"):
        write_image(tmp_path / "ct.png", np.array([[-1000.0, 10.0]]))
    assert list(tmp_path.iterdir()) == []


def test_16bit_colour_png_refused_not_quantised(tmp_path):
    with pytest.raises(ValueError, match="16-bit PNG holds 1 channel"):
        write_image(tmp_path / "rgb16.png", np.full((2, 2, 3), 40000.0))
    # A genuine 16-bit RGB PNG, hand-encoded (Pillow would read it as 8-bit).
    (tmp_path / "rgb16.png").write_bytes(_png_rgb16(np.full((2, 2, 3), 40000, np.uint16)))
    with pytest.raises(DataError, match=r"rgb16\.png: 16-bit colour PNG"):
        read_image(tmp_path / "rgb16.png")


def _png_rgb16(array: np.ndarray) -> bytes:
    """Encode ``array`` (H x W x 3 uint16) as a PNG of colour type 2, bit depth 16."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in array)
    header = struct.pack(">IIBBBBB", array.shape[1], array.shape[0], 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))


def test_grayscale_jpeg_reads_one_channel(tmp_path):
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(tmp_path / "x.jpg", quality=100)
    pixels = read_image(tmp_path / "x.jpg")
    assert pixels.shape == (8, 8, 1) and abs(float(pixels.mean()) - 200) < 2


def test_palette_png_gives_label_indices(tmp_path):
    image = Image.new("P", (2, 2))
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    image.putdata([0, 1, 2, 3])
    image.save(tmp_path / "labels.png")
    np.testing.assert_array_equal(read_image(tmp_path / "labels.png")[..., 0], [[0, 1], [2, 3]])


def test_float_tiff_stack_reads_slices_exactly(tmp_path):
    stack = np.random.default_rng(1).normal(size=(3, 4, 5)).astype(np.float32)
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack")
    slices = read_slices(tmp_path / "s.tif")
    assert [s.id for s in slices] == [f"{tmp_path / 's.tif'}#{i}" for i in range(3)]
    np.testing.assert_array_equal(np.stack([s.pixels[..., 0] for s in slices]), stack)


@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_nan_pixels_are_rejected(tmp_path, suffix):
    values = np.ones((4, 4), np.float32)
    values[1, 2] = np.nan
    path = tmp_path / f"nan{suffix}"
    np.save(path, values) if suffix == ".npy" else tifffile.imwrite(path, values)
    with pytest.raises(DataError, match=rf"nan\{suffix}: 1 pixel values are NaN or infinite"):
        read_image(path)


@pytest.mark.parametrize(
    ("shape", "slices", "channels"),
    [((6, 5), 1, 1), ((6, 5, 3), 1, 3), ((7, 6, 5), 7, 1), ((2, 6, 5, 8), 2, 8)],
)
def test_npy_layouts(tmp_path, shape, slices, channels):
    np.save(tmp_path / "a.npy", np.arange(np.prod(shape), dtype=np.int32).reshape(shape))
    result = read_slices(tmp_path / "a.npy")
    assert len(result) == slices and result[0].pixels.shape[-1] == channels


@pytest.mark.parametrize("channels", [1, 3, 6])
def test_npy_float32_round_trip_is_exact(tmp_path, channels):
    values = np.random.default_rng(2).normal(size=(4, 5, channels)).astype(np.float32)
    write_image(tmp_path / "a.npy", values)
    np.testing.assert_array_equal(read_image(tmp_path / "a.npy"), values)


class _Exploit:
    def __reduce__(self):
        return (open, ("/nonexistent/kerastrans-pickle-ran", "w"))


def test_pickled_npy_is_refused_without_running_code(tmp_path):
    path = tmp_path / "evil.npy"
    np.save(path, np.array([_Exploit()], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"evil\.npy: cannot load NPY array"):
        read_image(path)
    raw = tmp_path / "raw.npy"
    raw.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(DataError, match=r"raw\.npy: cannot load NPY array"):
        read_image(raw)


@pytest.mark.parametrize("name", ["x.png", "x.jpg", "x.tif", "x.npy"])
def test_text_file_with_image_suffix_is_named(tmp_path, name):
    (tmp_path / name).write_text("this is not an image\n")
    with pytest.raises(DataError) as caught:
        read_image(tmp_path / name)
    assert str(caught.value).startswith(f"{tmp_path / name}: ")
    assert "\n" not in str(caught.value)


def test_failing_write_leaves_no_file_and_no_temp_file(tmp_path, monkeypatch):
    def half_write(path, data, **kwargs):
        Path(path).write_bytes(b"II*\0partial")
        raise OSError("disk full")

    monkeypatch.setattr(kerastrans.io.images.tifffile, "imwrite", half_write)
    with pytest.raises(OSError, match="disk full"):
        write_image(tmp_path / "x.tif", np.zeros((2, 2)))
    assert list(tmp_path.iterdir()) == []


def test_write_rejects_unsupported_suffix_and_nan(tmp_path):
    with pytest.raises(ValueError, match=r"got 'x\.jpg'"):
        write_image(tmp_path / "x.jpg", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "x.npy", np.full((2, 2), np.nan))
