"""Each private Keras/TensorFlow/TFDS API kerastrans uses still exists and still means the same.

One test per function of `kerastrans._compat`: a test fails when a library
update removes or changes the private API behind it.
"""

import inspect
import logging
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from kerastrans import _compat


def test_adam_moments_are_the_variables_keras_adam_updates():
    variables = [
        keras.Variable(np.zeros((2,), "float32")),
        keras.Variable(np.zeros((3,), "float32")),
    ]
    gradients = [np.array([1.0, -2.0], "float32"), np.array([3.0, 0.5, -1.0], "float32")]
    optimizer = keras.optimizers.Adam(0.1, beta_1=0.5, beta_2=0.75)
    optimizer.apply_gradients(zip(gradients, variables, strict=True))
    for variable, gradient in zip(variables, gradients, strict=True):
        m, v = _compat.adam_moments(optimizer, variable)
        np.testing.assert_allclose(m.numpy(), 0.5 * gradient, rtol=1e-6)
        np.testing.assert_allclose(v.numpy(), 0.25 * gradient**2, rtol=1e-6)


def test_all_layers_lists_nested_layers_once():
    inner = keras.layers.Dense(2, name="inner")
    block = keras.Sequential([inner, keras.layers.ReLU(name="relu")], name="block")
    shared = keras.layers.Dense(1, name="shared")

    class Outer(keras.Model):
        def __init__(self):
            super().__init__()
            self.block, self.head, self.again = block, shared, shared

        def call(self, x):
            return self.again(self.head(self.block(x)))

    model = Outer()
    names = [layer.name for layer in _compat.all_layers(model)]
    assert names[0] == model.name
    assert sorted(names[1:]) == ["block", "inner", "relu", "shared"]


def test_in_multi_worker_mode_is_false_on_one_process_and_is_what_keras_checks():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    assert _compat.in_multi_worker_mode(strategy) is False
    assert _compat.in_multi_worker_mode(tf.distribute.get_strategy()) is False
    # Keras reduces the logs with axis=0 exactly when this holds (adapt_model relies on it).
    from keras.src.backend.tensorflow import trainer

    source = inspect.getsource(trainer._collective_all_reduce_multi_worker)
    assert "strategy.extended._in_multi_worker_mode()" in source


def test_forget_distribution_strategy_makes_the_model_follow_the_scope():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert model.distribute_strategy is strategy
    _compat.forget_distribution_strategy(model)
    assert model.distribute_strategy is tf.distribute.get_strategy()
    with strategy.scope():
        assert model.distribute_strategy is strategy


def test_progbar_logger_shows_the_given_epochs_steps_and_first_step(capsys):
    class Bar(_compat.ProgbarLogger):
        def counts(self):
            return 3, 10, 4  # a run of 3 epochs of 10 steps, resumed after step 4

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(loss="mse", run_eagerly=True)
    bar = Bar()
    data = np.zeros((6, 2), "float32")
    model.fit(data, data[:, :1], batch_size=2, epochs=1, verbose=1, callbacks=[bar])
    assert (bar.epochs, bar.target, bar.seen) == (3, 10, 7)
    assert "Epoch 1/3" in capsys.readouterr().out


def test_scalar_summary_metadata_marks_a_scalar_for_tensorboard(tmp_path):
    with tf.summary.create_file_writer(str(tmp_path)).as_default():
        metadata = _compat.scalar_summary_metadata()
        tf.summary.write("loss", tf.constant(0.5), step=0, metadata=metadata)
    events = [str(path) for path in tmp_path.iterdir()]
    values = [
        value
        for event in tf.compat.v1.train.summary_iterator(events[0])
        for value in event.summary.value
    ]
    assert [value.tag for value in values] == ["loss"]
    assert values[0].metadata.plugin_data.plugin_name == "scalars"
    assert values[0].metadata.data_class == 1  # DATA_CLASS_SCALAR


def test_tfds_progress_bars_shown_follows_display_progress_bar_and_is_restored():
    previous = _compat.tfds_progress_bars_shown()
    try:
        for shown in (False, True, False):
            tfds.display_progress_bar(shown)
            assert _compat.tfds_progress_bars_shown() is shown
            with _compat.tfds_progress_bars(enabled=not shown):
                assert _compat.tfds_progress_bars_shown() is (not shown)
            assert _compat.tfds_progress_bars_shown() is shown
    finally:
        tfds.display_progress_bar(previous)


def test_local_adhoc_builder_writes_quietly_with_metadata_and_never_asks_gcs(
    tmp_path, monkeypatch, capsys, caplog
):
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    features = tfds.features.FeaturesDict(
        {"input": tfds.features.Scalar(np.float32), "target": tfds.features.Scalar(np.float32)}
    )
    examples = [{"input": 1.0, "target": 2.0}, {"input": 3.0, "target": 4.0}]
    log = logging.getLogger("kerastrans.test_compat")
    builder = _compat.local_adhoc_builder(
        name="tiny",
        version="1.0.0",
        features=features,
        split_datasets={"train": [(str(i), e) for i, e in enumerate(examples)]},
        data_dir=str(tmp_path / "data"),
        description="two pairs",
        file_format="tfrecord",
        metadata={"unit": "HU"},
        supervised_keys=("input", "target"),
        log=log,
    )
    with caplog.at_level(logging.INFO, logger=log.name):
        builder.download_and_prepare(
            download_dir=str(tmp_path / "downloads"),
            download_config=tfds.download.DownloadConfig(try_download_gcs=False),
        )
    assert capsys.readouterr().out == ""  # TFDS prints; ours logs
    assert [record.name for record in caplog.records].count(log.name) == 2
    assert list(temp.iterdir()) == []  # initialize_from_bucket left no tmp*tfds folder
    read = tfds.builder_from_directory(builder.data_dir)
    assert read.info.description == "two pairs"
    assert read.info.supervised_keys == ("input", "target")
    assert dict(read.info.metadata) == {"unit": "HU"}
    assert read.info.disable_shuffling
    got = [float(x["input"]) for x in read.as_dataset(split="train")]
    assert got == [1.0, 3.0]


@pytest.mark.parametrize("name", _compat.__all__)
def test_every_compat_function_has_a_test(name):
    source = inspect.getsource(inspect.getmodule(test_every_compat_function_has_a_test))
    assert f"_compat.{name}" in source
