"""Tests of the simulation: noise statistics, units, determinism, degradations."""

import numpy as np
import pytest

from kerastrans.errors import DataError
from kerastrans.tomo.geometry import GeometrySpec
from kerastrans.tomo.phantoms import forbild, random_ellipses
from kerastrans.tomo.simulate import (
    SinogramSimulator,
    add_white_noise,
    attenuation_to_hu,
    degrade_resolution,
    hu_to_attenuation,
    lowdose_examples,
    photon_counts,
    post_log,
    sinogram_examples,
    superres_examples,
    transmission_noise,
)

SPEC = GeometrySpec((32, 32), num_angles=12)


def ellipses(count, seed=0, size=32):
    return [
        (f"e{i}", image) for i, image in enumerate(random_ellipses(count, seed, shape=(size,) * 2))
    ]


def test_photon_counts_have_poisson_mean_and_variance():
    line_integrals = np.array([0.0, 1.0, 3.0, 6.0])
    expected = 1000.0 * np.exp(-line_integrals)  # 1000, 368, 50, 2.5 photons
    rng = np.random.default_rng(0)
    counts = photon_counts(np.broadcast_to(line_integrals, (20000, 4)), 1000.0, rng)
    np.testing.assert_allclose(counts.mean(axis=0), expected, rtol=0.01)
    np.testing.assert_allclose(counts.var(axis=0), expected, rtol=0.05)


def test_post_log_floors_zero_counts():
    out = post_log(np.array([0.0, 1.0, 100.0]), 100.0, min_counts=0.1)
    np.testing.assert_allclose(out, [np.log(1000.0), np.log(100.0), 0.0], rtol=1e-6)
    assert out.dtype == np.float32


def test_transmission_noise_is_nearly_unbiased_at_high_dose():
    p = np.full((200, 50), 2.0, np.float32)
    noisy = transmission_noise(p, 1e6, np.random.default_rng(1))
    assert noisy.mean() == pytest.approx(2.0, abs=1e-3)
    # Delta method: var(-log(N / I0)) = 1 / (I0 exp(-p)).
    assert noisy.std() == pytest.approx(np.sqrt(np.exp(2.0) / 1e6), rel=0.05)


def test_white_noise_std_is_relative_to_mean_absolute_value():
    sinogram = np.full((300, 300), -4.0, np.float32)
    noise = add_white_noise(sinogram, 0.025, np.random.RandomState(0)) - sinogram
    assert noise.std() == pytest.approx(0.1, rel=0.01)
    assert abs(noise.mean()) < 0.002


def test_hu_and_attenuation_round_trip_and_clip_below_air():
    hu = np.array([-1000.0, 0.0, 1000.0, 3000.0], np.float32)
    np.testing.assert_allclose(hu_to_attenuation(hu, 0.02), [0.0, 0.02, 0.04, 0.08], rtol=1e-6)
    np.testing.assert_allclose(attenuation_to_hu(hu_to_attenuation(hu)), hu, atol=1e-3)
    assert hu_to_attenuation(np.float32(-1500.0)) == 0.0


def test_simulation_is_deterministic_with_seed_and_thread_count():
    def run(seed, threads):
        records = sinogram_examples(
            ellipses(3),
            SPEC,
            random_state=seed,
            threads=threads,
            simulation_shape=(64, 64),
            impl="astra_cpu",
        )
        return np.stack([record["input"] for record in records])

    first = run(7, threads=1)
    np.testing.assert_array_equal(first, run(7, threads=2))
    assert not np.array_equal(first, run(8, threads=1))


def test_finer_simulation_grid_changes_data_slightly():
    image = np.asarray(next(random_ellipses(1, 3, shape=(32, 32))))
    coarse = SinogramSimulator(SPEC, impl="astra_cpu")(image)
    fine = SinogramSimulator(SPEC, (96, 96), impl="astra_cpu")(image)
    assert fine.shape == coarse.shape == (12, 47)
    relative = np.linalg.norm(fine - coarse) / np.linalg.norm(coarse)
    assert 1e-3 < relative < 0.1  # same object, different discretisation: no inverse crime


def test_sinogram_records_hold_float32_channels_last():
    record = next(
        sinogram_examples(
            ellipses(1),
            SPEC,
            noise="poisson",
            photons=1e4,
            attenuation=lambda v: v * np.float32(0.02),
        )
    )
    assert record["input"].shape == (12, 47, 1)
    assert record["target"].shape == (32, 32, 1)
    assert record["input"].dtype == record["target"].dtype == np.float32
    assert record["id"] == "e0"


def test_sinogram_examples_reject_images_off_the_grid():
    with pytest.raises(DataError, match=r"^bad: image shape \(16, 16\) differs from the geometry"):
        list(sinogram_examples([("bad", np.zeros((16, 16)))], SPEC))


def test_lowdose_noise_falls_as_one_over_root_dose():
    hu = [("f", 1000.0 * (forbild((32, 32)) - 1.0))]
    geometry = SPEC.replace(extent=(256.0, 256.0), num_angles=None)

    def lowdose(photons):
        record = next(lowdose_examples(hu, geometry, photons=photons, random_state=0))
        np.testing.assert_array_equal(record["target"][..., 0], hu[0][1])
        return record["input"]

    reference = lowdose(1e9)  # practically noise-free: FBP blur only

    def noise(photons):
        return np.sqrt(np.mean((lowdose(photons) - reference) ** 2))

    assert noise(1e3) / noise(1e5) == pytest.approx(10.0, rel=0.3)


def test_degrade_resolution_blurs_and_averages_blocks():
    image = np.zeros((8, 8), np.float32)
    image[:, 4:] = 1.0
    low = degrade_resolution(image, 2, sigma=0.0)
    np.testing.assert_array_equal(low, np.repeat([[0.0, 0.0, 1.0, 1.0]], 4, axis=0))
    assert degrade_resolution(image, 4).shape == (2, 2)
    assert degrade_resolution(image, 2).mean() == pytest.approx(image.mean(), abs=1e-6)


@pytest.mark.parametrize(
    ("shape", "factor", "message"),
    [((8, 8), 3, "factor must be 2 or 4, got 3"), ((6, 8), 4, "not divisible by factor 4")],
)
def test_degrade_resolution_rejects_bad_factor(shape, factor, message):
    with pytest.raises(ValueError, match=message):
        degrade_resolution(np.zeros(shape), factor)


def test_superres_upsample_returns_input_on_target_grid():
    records = list(superres_examples([("a", np.ones((16, 16)))], 4, upsample=True))
    assert records[0]["input"].shape == records[0]["target"].shape == (16, 16, 1)
    low = next(superres_examples([("a", np.ones((16, 16)))], 4))
    assert low["input"].shape == (4, 4, 1)


def test_superres_bicubic_upsampling_recovers_a_smooth_image_better_than_bilinear():
    rows, columns = np.mgrid[0:32, 0:32].astype(np.float32)
    image = np.sin(rows / 5.0) * np.cos(columns / 7.0)  # smooth: no blur needed against aliasing

    def upsampled(**interpolation):
        (record,) = superres_examples([("a", image)], 2, sigma=0.0, upsample=True, **interpolation)
        return record["input"][..., 0]

    def error(low):  # away from the borders, where the resampling reflects the image
        return np.sqrt(np.mean((low - image)[4:-4, 4:-4] ** 2))

    np.testing.assert_array_equal(upsampled(), upsampled(interpolation=1))  # default: bilinear
    assert error(upsampled(interpolation=3)) < 0.5 * error(upsampled(interpolation=1))


@pytest.mark.parametrize("order", [6, -1, True])
def test_superres_rejects_an_interpolation_that_is_no_spline_order(order):
    message = f"interpolation must be a spline order from 0 to 5, got {order!r}"
    with pytest.raises(ValueError, match=message):
        next(superres_examples([("a", np.ones((8, 8)))], 2, upsample=True, interpolation=order))
