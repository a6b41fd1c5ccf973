"""Training TensorFlow workloads on a real dataset (nnr_profile.workloads.tf.training), on the CPU.

Nothing here imports TensorFlow into the pytest process (TF and torch crash when loaded in one
process): the checks run once in a child, tests/workloads/tf_training_probe.py, which trains mlp and
smallcnn on the offline digits dataset and prints what these tests assert.
"""

import importlib.util
import math
from pathlib import Path

import pytest
from conftest import run_probe

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("tensorflow") is None, reason="tensorflow is not installed"
    ),
    pytest.mark.slow,
]

SIZE_HINT = "same --model, --dataset and --workload-arg as the stored replicas?"


@pytest.fixture(scope="module")
def probe() -> dict:
    """What workloads/tf_training_probe.py measured in a child process (one TF import)."""
    return run_probe(Path(__file__).parent / "tf_training_probe.py")


def same(a: dict, b: dict) -> bool:
    """Two trainings ended bitwise alike: losses, weights and predictions."""
    return (a["losses"], a["weights"], a["predictions"]) == (
        b["losses"],
        b["weights"],
        b["predictions"],
    )


def test_mlp_learns_digits_in_two_epochs(probe):
    run = probe["mlp"][0]
    assert len(run["losses"]) == 2 and all(math.isfinite(x) for x in run["losses"])
    assert run["losses"][1] < run["losses"][0] < 2.5
    assert run["accuracy"] > 0.5  # chance is 0.1
    assert math.isfinite(run["test_loss"]) and run["test_loss"] < math.log(10)
    assert run["predictions_dtype"] == "int64" and run["predictions_shape"] == [360]
    assert run["weights_dtype"] == "float32"
    assert run["weights_size"] == run["params"] == 64 * 392 + 392 + 392 * 196 + 196 + 196 * 10 + 10


def test_smallcnn_trains_on_channels_last_digits(probe):
    for run in probe["smallcnn"]:
        assert len(run["losses"]) == 2 and all(math.isfinite(x) for x in run["losses"])
        assert max(run["losses"]) < 2.5 and math.isfinite(run["test_loss"])
        assert run["predictions_shape"] == [360] and run["weights_size"] == run["params"]


def test_same_seeds_give_bitwise_identical_weights_and_predictions(probe):
    for key in ("mlp", "smallcnn", "dropout", "flip", "deterministic"):
        first, second = probe[key][0], probe[key][1]
        assert same(first, second), key
        assert first["test_loss"] == second["test_loss"], key


def test_other_seeds_give_other_weights(probe):
    base = probe["mlp"][0]
    other_data, other_init = probe["mlp"][2], probe["mlp"][3]
    assert base["weights"] != other_data["weights"] and base["losses"] != other_data["losses"]
    assert base["weights"] != other_init["weights"] != other_data["weights"]
    assert probe["dropout"][0]["weights"] != probe["dropout"][2]["weights"]  # data seed drives it


def test_flip_augmentation_changes_training_on_flip_datasets(probe):
    flipped, plain = probe["flip"][0], probe["flip"][2]
    assert flipped["weights"] != plain["weights"]
    assert flipped["losses"] != plain["losses"]


def test_flip_reverses_the_width_axis_of_the_masked_images(probe):
    assert probe["augmentation"]["flip_matches_numpy"]
    assert probe["augmentation"]["flip_changes_images"]


def test_dropout_seeds_follow_the_data_seed_not_the_init_seed(probe):
    states = probe["augmentation"]["dropout_states"]
    assert len(states["0/7"]) == 2  # one seed generator per Dropout layer
    assert states["0/7"] == states["1/7"] != states["0/8"]
    assert states["0/None"] != states["0/7"]
    assert all(counter == 0 for state in states["0/7"] for _, counter in [state])


def test_flat_weights_round_trip(probe):
    trip = probe["round_trip"]
    assert trip["fresh_differs"] and trip["restored_equal"] and trip["restored_predictions"]
    assert trip["restored_loss"] == trip["trained_loss"]
    assert trip["paths"] == sorted(trip["paths"]) and len(set(trip["paths"])) == 6


def test_loading_weights_of_another_size_is_a_usage_error(probe):
    trip = probe["round_trip"]
    assert trip["into_smallcnn"] == (
        f"UsageError: stored weights have 104478 values but the model has 15434: {SIZE_HINT}"
    )
    assert trip["one_short"].startswith("UsageError: stored weights have 104477 values")


def test_input_shapes_are_channels_last_and_refused_where_they_cannot_work(probe):
    shapes = probe["shapes"]
    assert shapes["mlp"] == [64] and shapes["smallcnn"] == [8, 8, 1]
    assert shapes["tokens"].startswith("UsageError: embedding_lm takes tokens inputs")
    assert "at least 32 pixels; digits has 8x8" in shapes["too_small"]
    assert "channels_last=True" in shapes["channels_first"]


def test_a_gpu_model_where_tf_sees_no_gpu_is_refused(probe):
    if probe["gpu_refusal"] is None:
        pytest.skip("TensorFlow sees a GPU here")
    assert probe["gpu_refusal"].startswith("MissingDependencyError: TensorFlow sees no GPU")
    assert "pip install" in probe["gpu_refusal"]


def test_training_runs_under_op_determinism(probe):
    knobs = probe["knobs"]
    assert knobs["op_determinism"] == "tf.config.experimental.enable_op_determinism"
    assert set(knobs) == {"op_determinism", "CUBLAS_WORKSPACE_CONFIG"}  # recorded, as in torch
    assert probe["deterministic"][0]["accuracy"] > 0.5
    assert all(math.isfinite(x) for run in probe["deterministic"] for x in run["losses"])
    assert probe["thread_pools"] == [1, 1]  # OMP_NUM_THREADS=1 reached TF's pools
