"""The tf.data pipeline: windowing, alignment, determinism, unpaired sampling, 2.5D, padding."""

import gc

import numpy as np
import pytest
import tensorflow as tf
from data_helpers import noise_image

from kerastrans.config import AugmentConfig, DataConfig, Window
from kerastrans.data.padding import crop_to_size
from kerastrans.data.pipeline import make_dataset
from kerastrans.data.window import unwindow, window
from kerastrans.errors import DataError


def data_config(**options) -> DataConfig:
    """A `DataConfig` whose windows are the CT range -1024..3071 unless given."""
    return DataConfig(**{"input_window": Window(), "target_window": Window(), **options})


AUGMENTED = data_config(
    augment=AugmentConfig(
        flip_left_right=True, flip_up_down=True, rotation=20, scale=0.1, translation=0.1
    ),
    batch_size=4,
    crop=(16, 16),
    seed=11,
    shuffle_buffer=16,
)


def batches(dataset):
    """Every batch of ``dataset`` as NumPy values."""
    return [tf.nest.map_structure(lambda part: part.numpy(), batch) for batch in dataset]


def constant_image(value, shape=(8, 8, 1)):
    return np.full(shape, value, np.float32)


def test_evaluation_reads_stored_order_windowed(same_pairs):
    config = data_config(
        input_window=Window(-500, 1000), target_window=Window(-1000, 2000), batch_size=3
    )
    ((inputs, targets),) = batches(make_dataset(same_pairs, "test", config, training=False))
    stored = np.stack([noise_image(100 + i, (24, 24, 1)) for i in range(3)])
    np.testing.assert_allclose(inputs, window(stored, config.input_window).numpy(), atol=0)
    np.testing.assert_allclose(
        unwindow(targets, config.target_window).numpy(), np.clip(stored, -1000, 1000), atol=1e-3
    )
    assert inputs.min() >= -1 and inputs.max() <= 1


def test_augmented_training_keeps_input_and_target_aligned(same_pairs):
    dataset = make_dataset(same_pairs, "train", AUGMENTED, training=True)
    assert dataset.element_spec[0].shape == (4, 16, 16, 1)
    assert dataset.element_spec[1].shape == (4, 16, 16, 1)
    got = batches(dataset)
    assert len(got) == 3  # 12 examples, batches of 4
    for inputs, targets in got:
        np.testing.assert_array_equal(inputs, targets)


def test_same_seed_gives_identical_batches_and_another_seed_differs(same_pairs):
    first = batches(make_dataset(same_pairs, "train", AUGMENTED, training=True))
    again = batches(make_dataset(same_pairs, "train", AUGMENTED, training=True))
    other_config = data_config(**{**AUGMENTED.__dict__, "seed": 12})
    other = batches(make_dataset(same_pairs, "train", other_config, training=True))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(first[0][0], other[0][0])


def test_each_epoch_draws_new_order_and_transforms(same_pairs):
    dataset = make_dataset(same_pairs, "train", AUGMENTED, training=True)
    epoch_1, epoch_2 = batches(dataset), batches(dataset)
    assert not np.array_equal(epoch_1[0][0], epoch_2[0][0])


def test_noise_is_injected_into_the_input_only(same_pairs):
    config = data_config(
        augment=AugmentConfig(noise_std=20.0),
        input_window=Window(-2000, 4000),
        target_window=Window(-2000, 4000),
        batch_size=12,
        seed=1,
    )
    ((inputs, targets),) = batches(make_dataset(same_pairs, "train", config, training=True))
    # 20 HU through a 4000 HU window is 0.01 in [-1, 1].
    assert np.std(inputs - targets) == pytest.approx(0.01, rel=0.1)


@pytest.fixture(scope="module")
def domains(tmp_path_factory):
    """Unpaired: 4 images in trainA (values 0..3), 10 in trainB (values 100..109)."""
    from kerastrans.data.records import write_dataset

    path = tmp_path_factory.mktemp("unpaired") / "ds"
    write_dataset(
        path,
        {
            "trainA": [{"image": constant_image(i), "id": f"a{i}"} for i in range(4)],
            "trainB": [{"image": constant_image(100 + i), "id": f"b{i}"} for i in range(10)],
        },
        progress=False,
    )
    return path


def test_unpaired_domains_are_windowed_and_shuffled_independently(domains):
    config = data_config(input_window=Window(0, 10), target_window=Window(100, 10), seed=3)
    dataset = make_dataset(domains, "train", config, training=True)
    epochs = []
    for _ in range(4):
        pairs = [
            (
                round(float(unwindow(a, config.input_window)[0, 0, 0, 0])),
                round(float(unwindow(b, config.target_window)[0, 0, 0, 0])),
            )
            for a, b in dataset
        ]
        assert len(pairs) == 10  # max(len(A), len(B)): the smaller domain cycles
        assert sorted(b for _, b in pairs) == list(range(100, 110))
        assert {a for a, _ in pairs} == {0, 1, 2, 3}
        epochs.append(pairs)
    # A's partner changes from epoch to epoch: the two shuffles are independent.
    partners = {a: {b for pairs in epochs for a2, b in pairs if a2 == a} for a in range(4)}
    assert all(len(bs) > 2 for bs in partners.values())
    assert len({tuple(pairs) for pairs in epochs}) == 4


def test_unpaired_evaluation_pairs_in_stored_order(domains):
    config = data_config(input_window=Window(0, 10), target_window=Window(100, 10), batch_size=4)
    dataset = make_dataset(domains, "train", config, training=False, with_info=True)
    ((_, _, info),) = batches(dataset)  # zip stops with the smaller domain
    assert list(info["input_id"]) == [b"a0", b"a1", b"a2", b"a3"]
    assert list(info["target_id"]) == [b"b0", b"b1", b"b2", b"b3"]


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """Slices valued by position: series s1 at 0..3, series s2 at 10..12, one without series."""
    from kerastrans.data.records import write_dataset

    def slice_(value, series):
        return {
            "input": constant_image(value),
            "target": constant_image(-value),
            "id": f"{series}@{value}",
            "series": series,
            "position": float(value),
        }

    examples = [slice_(v, "s1") for v in range(4)] + [slice_(v, "s2") for v in (10, 11, 12)]
    examples.append(slice_(20, None))
    path = tmp_path_factory.mktemp("series") / "ds"
    write_dataset(path, {"train": examples, "backwards": examples[::-1]}, progress=False)
    return path


def test_neighbour_stack_orders_channels_by_position_within_a_series(series):
    config = data_config(
        input_window=Window(-50, 100), target_window=Window(-50, 100), neighbours=1, batch_size=8
    )
    ((inputs, targets),) = batches(make_dataset(series, "train", config, training=False))
    assert inputs.shape == (8, 8, 8, 3) and targets.shape == (8, 8, 8, 1)
    values = np.round(unwindow(inputs[:, 0, 0, :], config.input_window).numpy()).astype(int)
    assert values.tolist() == [
        [0, 0, 1],
        [0, 1, 2],
        [1, 2, 3],
        [2, 3, 3],  # s1: ends repeat the end slice
        [10, 10, 11],
        [10, 11, 12],
        [11, 12, 12],  # s2 never borrows from s1
        [20, 20, 20],  # no series: no neighbours
    ]
    centre = np.round(unwindow(targets[:, 0, 0, 0], config.target_window).numpy())
    assert centre.tolist() == [0, -1, -2, -3, -10, -11, -12, -20]


def test_neighbour_stack_refuses_series_stored_out_of_order(series):
    with pytest.raises(DataError, match="split 'backwards' does not store the slices"):
        make_dataset(series, "backwards", data_config(neighbours=1), training=False)


def test_pipeline_pads_to_multiple_and_reports_sizes(same_pairs):
    config = data_config(pad_multiple=16, batch_size=3)
    plain = batches(make_dataset(same_pairs, "test", data_config(batch_size=3), training=False))
    dataset = make_dataset(same_pairs, "test", config, training=False, with_info=True)
    assert dataset.element_spec[0].shape == (None, 32, 32, 1)
    ((inputs, _, info),) = batches(dataset)
    assert info["input_size"].tolist() == [[24, 24]] * 3
    assert list(info["input_id"]) == [b"test0", b"test1", b"test2"]
    cropped = crop_to_size(tf.constant(inputs), info["input_size"][0]).numpy()
    np.testing.assert_array_equal(cropped, plain[0][0])


def test_input_context_shards_examples_and_splits_the_batch(same_pairs):
    config = data_config(batch_size=4)
    ids = []
    for worker in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=worker, num_replicas_in_sync=2
        )
        dataset = make_dataset(
            same_pairs, "train", config, training=False, with_info=True, input_context=context
        )
        got = batches(dataset)
        assert [len(batch[0]) for batch in got] == [2, 2, 2]  # 6 examples, per replica 4 / 2
        ids.append([i for batch in got for i in batch[2]["input_id"]])
    assert not set(ids[0]) & set(ids[1])
    assert len(ids[0] + ids[1]) == 12


def test_batching_images_of_several_sizes_is_refused(write):
    path = write(
        {
            "train": [
                {
                    "input": noise_image(i, (8 + i, 8, 1)),
                    "target": noise_image(i, (8 + i, 8, 1)),
                    "id": str(i),
                }
                for i in range(2)
            ]
        }
    )
    with pytest.raises(ValueError, match=r"cannot batch 2 images of several sizes .*8x8x1"):
        make_dataset(path, "train", data_config(batch_size=2), training=False)
    assert (
        len(
            batches(
                make_dataset(
                    path, "train", data_config(batch_size=2, pad_multiple=16), training=False
                )
            )
        )
        == 1
    )
    with pytest.raises(DataError, match="no split 'valid'"):
        make_dataset(path, "valid", data_config(), training=False)


def test_super_resolution_pairs_are_cropped_at_corresponding_regions(write):
    def pair(i):
        low = noise_image(i, (12, 10, 1), scale=0.5)
        return {"input": low, "target": np.repeat(np.repeat(low, 2, 0), 2, 1), "id": str(i)}

    path = write({"train": [pair(i) for i in range(4)]})
    config = data_config(
        input_window=Window(-1, 2),
        target_window=Window(-1, 2),
        crop=(6, 4),
        augment=AugmentConfig(flip_left_right=True),
        batch_size=2,
        seed=0,
    )
    dataset = make_dataset(path, "train", config, training=True)
    assert dataset.element_spec[1].shape == (2, 12, 8, 1)  # crop scaled by the 2x size ratio
    for low, high in batches(dataset):
        np.testing.assert_array_equal(high, np.repeat(np.repeat(low, 2, 1), 2, 2))
    with pytest.raises(ValueError, match="has 4 examples, fewer than one batch of 8"):
        make_dataset(path, "train", data_config(batch_size=8, crop=(6, 4)), training=True)


def test_windows_left_to_the_dataset_are_refused(same_pairs):
    with pytest.raises(ValueError, match=r"data.target_window is None \(chosen from the dataset\)"):
        make_dataset(same_pairs, "test", DataConfig(input_window=Window()), training=False)


def _ids(dataset):
    return [i.decode() for _, _, info in batches(dataset) for i in info["input_id"]]


def test_training_from_start_reads_on_through_the_split_and_wraps_around(same_pairs):
    config = data_config(batch_size=4, seed=3, shuffle_buffer=1)  # no shuffle: stored order
    rotated = [f"train{i}" for i in (*range(5, 12), *range(5))]
    for start in (5, 17):  # modulo the split's 12 examples
        dataset = make_dataset(
            same_pairs, "train", config, training=True, with_info=True, start=start
        )
        assert _ids(dataset) == rotated
    evaluation = make_dataset(same_pairs, "train", config, training=False, with_info=True, start=5)
    assert _ids(evaluation)[:2] == ["train0", "train1"]  # evaluation keeps stored order


def test_a_training_epoch_cut_short_leaves_no_half_filled_cache(same_pairs, capfd):
    # TFDS caches small splits in memory; an epoch of fewer steps than the split made
    # TensorFlow discard the partial cache with a warning ("did not fully read the
    # dataset being cached"), every epoch of every run on a small dataset.
    capfd.readouterr()
    config = data_config(batch_size=2, shuffle_buffer=1)  # reads 2 of the split's 12
    batch = next(iter(make_dataset(same_pairs, "train", config, training=True)))
    assert batch[0].shape[0] == 2
    gc.collect()  # the partial cache is discarded (and the warning written) with the iterator
    assert "being cached" not in capfd.readouterr().err


def test_a_rotated_split_stacks_the_slices_next_to_the_cut_as_the_whole_split_does(series):
    config = data_config(
        input_window=Window(-50, 100),
        target_window=Window(-50, 100),
        neighbours=1,
        batch_size=8,
        seed=0,
        shuffle_buffer=1,
    )
    ((inputs, _),) = batches(make_dataset(series, "train", config, training=True, start=2))
    values = np.round(unwindow(inputs[:, 0, 0, :], config.input_window).numpy()).astype(int)
    assert values.tolist() == [
        [1, 2, 3],  # the cut lies between slices 1 and 2 of s1: their stacks are whole
        [2, 3, 3],
        [10, 10, 11],
        [10, 11, 12],
        [11, 12, 12],
        [20, 20, 20],
        [0, 0, 1],
        [0, 1, 2],
    ]
