"""`real_ct_slices`: the real CT slices of pydicom/pydicom-data as simulation phantoms, in HU."""

import numpy as np
import pytest
from skimage.transform import downscale_local_mean

from kerastrans.data.recipes.pydicom_ct import real_ct_slices, source_path
from kerastrans.io import read_image


def test_real_ct_slices_average_blocks_floor_air_and_keep_the_physical_extent():
    (name, image, extent), (small, small_image, small_extent) = real_ct_slices(
        ["693_UNCI.dcm", "CT_small.dcm"], 128
    )
    raw = read_image(source_path("693_UNCI.dcm"))[..., 0]  # 512 x 512, 0.478516 mm, down to -3995
    assert (name, small) == ("693_UNCI.dcm", "CT_small.dcm")
    assert image.shape == (128, 128) and image.dtype == np.float32
    np.testing.assert_allclose(image, np.maximum(downscale_local_mean(raw, (4, 4)), -1000.0))
    assert extent == pytest.approx((512 * 0.478516, 512 * 0.478516))
    assert small_image.shape == (128, 128)  # already 128 x 128: kept as it is
    assert small_extent == pytest.approx((128 * 0.661468, 128 * 0.661468))


def test_real_ct_slices_keep_a_slice_smaller_than_the_size_asked_and_reject_size_zero():
    ((_, image, _),) = real_ct_slices(["CT_small.dcm"], 256, air=-500.0)
    assert image.shape == (128, 128) and image.min() == -500.0
    with pytest.raises(ValueError, match="image_size must be >= 1 pixel, got 0"):
        next(real_ct_slices(["CT_small.dcm"], 0))
