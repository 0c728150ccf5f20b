"""``benchmarks/profile_ops.py``: a profiler trace's op events summed per op type and step."""

import pytest


@pytest.fixture(scope="module")
def profile(benchmark):
    return benchmark("profile_ops")


def _space(lines, plane_name="/host:CPU"):
    """An ``XSpace`` with one plane whose lines hold ``(event name, ms)`` events."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    plane = space.planes.add(name=plane_name)
    ids = {}
    for line_name, events in lines.items():
        line = plane.lines.add(name=line_name)
        for name, ms in events:
            if name not in ids:
                ids[name] = len(ids) + 1
                plane.event_metadata[ids[name]].id = ids[name]
                plane.event_metadata[ids[name]].name = name
            line.events.add(metadata_id=ids[name], duration_ps=round(ms * 1e9))
    return space


def test_op_durations_group_op_events_by_type_and_skip_the_rest(profile):
    space = _space({
        "python": [("EagerLocalExecute: __inference_step_11", 30.0), ("one_step_on_data", 30.0)],
        "tf_Compute/1": [
            ("ExecutorState::Process", 9.0),
            ("model/prelu/Relu:Relu", 4.0),
            ("ThreadpoolListener::StartRegion", 0.0),
            ("model/SparseTensorDenseMatMul_4:SparseTensorDenseMatMul", 3.0),
        ],
        "tf_Compute/2": [("model/prelu_1/Relu:Relu", 2.5), ("g_adam/Add_94:AddV2", 0.5)],
    })  # fmt: skip
    assert profile.op_durations(space) == {
        "Relu": [4.0, 2.5],
        "SparseTensorDenseMatMul": [3.0],
        "AddV2": [0.5],
    }


def test_op_durations_read_only_the_host_plane(profile):
    device = _space({"stream": [("conv/Conv2D:Conv2D", 5.0)]}, plane_name="/device:GPU:0")
    assert profile.op_durations(device) == {}


def test_rows_give_thread_time_per_step_its_shares_and_the_parallelism(profile):
    groups = {"Relu": [6.0, 8.0], "Mul": [3.0, 2.0], "Neg": [0.01, 0.01]}
    rows = {row["method"]: row for row in profile.op_rows([8.0, 12.0, 10.0], groups)}
    # 19.02 thread-ms over 3 steps = 6.34 per step, against a median wall of 10 ms
    assert rows["step"] == {"method": "step", "ms": 10.0, "steps": 3, "parallelism": 0.634}
    assert (rows["Relu"]["ms"], rows["Relu"]["calls"]) == (pytest.approx(14 / 3, abs=1e-3), 2 / 3)
    assert rows["Relu"]["share"] == round(14 / 19.02, 4)
    assert rows["other-ops"]["ms"] == pytest.approx(0.02 / 3, abs=1e-3)  # Neg: under 0.5 %
    assert "Neg" not in rows


def test_a_real_trace_names_the_ops_of_the_step(profile):
    import tensorflow as tf

    step = tf.function(lambda batch: tf.math.sin(tf.linalg.matmul(batch[0], batch[1])))
    batch = (tf.ones((64, 64)), tf.ones((64, 64)))
    walls, space = profile.trace(step, batch, warmup=1, steps=2)
    groups = profile.op_durations(space)
    assert len(walls) == 2 and min(walls) > 0
    assert "Sin" in groups and any("MatMul" in kind for kind in groups)
    assert len(groups["Sin"]) == 2  # one per traced step, none of the warm-up
