"""Tests of GeometrySpec: round trips, ODL defaults, refinement and argument checks."""

import json
import subprocess
import sys

import numpy as np
import pytest

from kerastrans.tomo.geometry import GeometrySpec, geometry_from_metadata

FAN = GeometrySpec(
    (48, 64),
    extent=(96.0, 128.0),
    beam="fan",
    src_radius=300.0,
    det_radius=100.0,
    num_angles=24,
    angle_range=(10.0, 300.0),
)


def assert_same_odl_geometry(first, second):
    """ODL geometries have no __eq__: compare what defines them."""
    assert type(first) is type(second)
    np.testing.assert_array_equal(first.angles, second.angles)
    for a, b in [(first.det_partition, second.det_partition)]:
        assert a.shape == b.shape
        np.testing.assert_array_equal(a.min_pt, b.min_pt)
        np.testing.assert_array_equal(a.max_pt, b.max_pt)
    assert getattr(first, "src_radius", None) == getattr(second, "src_radius", None)
    assert getattr(first, "det_radius", None) == getattr(second, "det_radius", None)


@pytest.mark.parametrize("spec", [GeometrySpec((64, 64), num_angles=20), FAN], ids=["par", "fan"])
def test_spec_round_trips_through_json(spec):
    for value in (spec, spec.resolve()):
        assert GeometrySpec.from_dict(json.loads(json.dumps(value.to_dict()))) == value


@pytest.mark.parametrize("spec", [GeometrySpec((64, 64), num_angles=20), FAN], ids=["par", "fan"])
def test_geometry_from_metadata_equals_original(spec):
    metadata = json.loads(json.dumps({"geometry": spec.resolve().to_dict(), "task": "x"}))
    rebuilt = geometry_from_metadata(metadata)
    assert rebuilt == spec.resolve()
    assert_same_odl_geometry(rebuilt.odl_geometry(), spec.odl_geometry())


def test_resolve_takes_odl_nyquist_defaults():
    # dival "ellipses": 128 x 128 on [-64, 64]^2 -> 183 detector pixels over 2 * 64 * sqrt(2) mm.
    resolved = GeometrySpec((128, 128), num_angles=30).resolve()
    assert resolved.det_shape == 183
    assert resolved.det_width == pytest.approx(128 * np.sqrt(2))
    assert resolved.angle_range == (0.0, 180.0)
    assert resolved.extent == (128.0, 128.0)
    assert GeometrySpec((64, 64)).resolve().num_angles == 143


def test_limited_angle_range_spans_given_degrees():
    angles = GeometrySpec((64, 64), num_angles=30, angle_range=(0, 120)).odl_geometry().angles
    step = np.deg2rad(120) / 30
    np.testing.assert_allclose(angles, step / 2 + step * np.arange(30))


def test_refine_keeps_angles_detector_and_extent():
    spec = GeometrySpec((128, 128), num_angles=30)
    fine = spec.refine((400, 400))
    assert fine.image_shape == (400, 400)
    assert fine.physical_extent == (128.0, 128.0)
    assert fine.pixel_size == pytest.approx((0.32, 0.32))
    assert_same_odl_geometry(fine.odl_geometry(), spec.odl_geometry())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"image_shape": (0, 64)}, "image_shape needs positive sizes, got (0, 64)"),
        ({"image_shape": (64,)}, "image_shape must be a pair of numbers, got (64,)"),
        ({"extent": (10.0, -1.0)}, "extent needs positive sizes in mm, got (10.0, -1.0)"),
        ({"beam": "cone"}, "beam must be one of ('parallel', 'fan'), got 'cone'"),
        ({"num_angles": 0}, "num_angles must be a positive integer or None, got 0"),
        ({"angle_range": (90, 10)}, "angle_range needs start < stop <= start + 360 degrees"),
        ({"det_width": -3}, "det_width must be a positive number in mm, got -3"),
        ({"src_radius": 100.0}, "src_radius only apply to beam='fan', got beam='parallel'"),
        ({"beam": "fan", "det_radius": 10.0}, "beam='fan' needs src_radius in mm, got None"),
        ({"beam": "fan", "src_radius": 40.0, "det_radius": 0.0}, "src_radius must exceed"),
    ],
)
def test_spec_rejects_bad_fields_naming_rule_and_value(changes, message):
    with pytest.raises(ValueError, match="^" + __import__("re").escape(message)):
        GeometrySpec(**{"image_shape": (64, 64), **changes})


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match=r"geometry has unknown keys \['angles'\]"):
        GeometrySpec.from_dict({"image_shape": [8, 8], "angles": 3})


def test_geometry_from_metadata_without_geometry_lists_keys():
    with pytest.raises(ValueError, match=r"metadata has no 'geometry' entry \(keys: \['task'\]\)"):
        geometry_from_metadata({"task": "denoising"})


def test_building_odl_objects_keeps_numpy_print_options():
    # `import odl` sets np.set_printoptions(legacy="1.13"); import_odl undoes it.
    code = (
        "import numpy as np; from kerastrans.tomo.geometry import GeometrySpec; "
        "GeometrySpec((8, 8)).odl_geometry(); print(np.get_printoptions()['legacy'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
