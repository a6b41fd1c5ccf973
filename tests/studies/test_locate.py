"""`verify --locate`: hash streams, their comparison, the PyTorch and TF recorders, the CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialSpec
from nnr_profile.studies.locate import prepare_session
from nnr_profile.studies.locate_stream import (
    Captured,
    Record,
    StreamWriter,
    describe,
    first_difference,
    max_abs_diff,
    read_stream,
)

TINY = ["--gpu", "cpu", "--iterations", "2", "--runs", "2"]


def _record(phase="forward_output", module="fc", slot="output0", digest="aa", iteration=0):
    return Record(iteration, phase, module, slot, digest, "2x3", "float32")


def _write(path: Path, records: list[Record]) -> Path:
    path.write_text("".join(r.line() for r in records), encoding="utf-8")
    return path


def test_a_record_survives_its_line():
    record = _record(module="layer1.0.conv1", digest="0badf00d")
    assert Record.parse(record.line()) == record


def test_identical_streams_have_no_difference(tmp_path):
    records = [_record(digest="a"), _record(phase="weight_grad", slot="weight", digest="b")]
    assert (
        first_difference(_write(tmp_path / "a", records), _write(tmp_path / "b", records)) is None
    )


@pytest.mark.parametrize(
    ("phase", "module", "slot", "expected"),
    [
        ("forward_output", "layer4.1.conv2", "output0", "iteration 1, layer4.1.conv2, forward: "),
        ("weight_grad", "layer4.1.conv2", "weight", "layer4.1.conv2, backward (weight grad): "),
        ("backward_input", "fc", "input0", "iteration 1, fc, backward (input grad): "),
        ("update", "fc", "bias", "iteration 1, fc, optimizer step (bias): "),
        ("forward_input", "layer1.0.relu", "input0", "layer1.0, forward (its own code before"),
        ("backward_output", "layer1.0.bn2", "output0", "layer1.0, backward (its own code"),
    ],
)
def test_the_first_differing_record_is_described_by_phase(tmp_path, phase, module, slot, expected):
    same = [_record(digest="same", iteration=0), _record(phase="update", digest="x", iteration=0)]
    first = [*same, _record(phase, module, slot, "1111", 1), _record(digest="later", iteration=1)]
    other = [*same, _record(phase, module, slot, "2222", 1), _record(digest="other", iteration=1)]
    difference = first_difference(_write(tmp_path / "a", first), _write(tmp_path / "b", other))
    assert difference.index == 2
    divergence = describe(difference, (0, 1))
    assert divergence.module == module and divergence.phase == phase
    assert divergence.iteration == 1
    assert expected in divergence.text()
    if phase not in ("forward_input", "backward_output"):
        assert divergence.text().endswith("inputs equal, output differs")


def test_a_shorter_stream_and_different_code_are_named(tmp_path):
    records = [_record(digest="a"), _record(digest="b", module="head")]
    short = first_difference(_write(tmp_path / "a", records), _write(tmp_path / "b", records[:1]))
    assert "run 2 stopped recording" in describe(short, (0, 1)).text()
    moved = [_record(digest="a"), _record(digest="b", module="other")]
    code = first_difference(_write(tmp_path / "c", records), _write(tmp_path / "d", moved))
    assert "executed different code at record 1" in describe(code, (0, 1)).text()


def test_the_text_carries_the_diff_and_the_ops():
    difference = describe_one(_record(phase="weight_grad", slot="weight", module="conv"))
    difference.max_abs_diff = 3.1e-7
    difference.nondeterministic_ops = ["index_add_cuda_"]
    text = difference.text()
    assert (
        "conv, backward (weight grad): inputs equal, output differs (max abs diff 3.1e-07)" in text
    )
    assert text.endswith("ops without a deterministic implementation here: index_add_cuda_")
    assert difference.to_dict()["text"] == text


def describe_one(record: Record):
    from nnr_profile.studies.locate_stream import Difference

    return describe(Difference(0, record, record), (0, 1))


def test_the_writer_keeps_the_first_mismatch_and_stops_at_the_capture(tmp_path):
    reference = [_record(digest="a"), _record(digest="b"), _record(digest="c")]
    path = _write(tmp_path / "ref", reference)
    writer = StreamWriter(None, reference=read_stream(path))
    arrays = [np.full(2, float(i)) for i in range(3)]
    written = [reference[0], _record(digest="x"), _record(digest="y")]
    for record, array in zip(written, arrays, strict=True):
        writer.write(record, lambda array=array: array)
    assert writer.mismatch[0] == 1 and writer.mismatch[1].tolist() == [1.0, 1.0]
    capture = StreamWriter(None, capture=1)
    capture.write(reference[0], lambda: arrays[0])
    with pytest.raises(Captured) as caught:
        capture.write(reference[1], lambda: arrays[1])
    assert caught.value.array.tolist() == [1.0, 1.0] and capture.capturing


def test_max_abs_diff():
    assert max_abs_diff(np.array([1.0, 2.0]), np.array([1.0, 2.5])) == 0.5
    assert max_abs_diff(np.zeros(2), np.zeros(3)) is None


def _stream(tmp_path: Path, name: str, spec: TrialSpec, steps: int) -> tuple[Path, list]:
    from nnr_profile.studies.locate_torch import run_recorded

    path = tmp_path / name
    with open(path, "w", encoding="utf-8") as handle:
        handles, ops, captured = run_recorded(prepare_session(spec)[0], steps, StreamWriter(handle))
    assert captured is None and ops == {}
    return path, handles


def test_torch_recorder_handles_in_place_code_and_two_runs_agree(tmp_path):
    spec = TrialSpec("torch", "resnet18_imagenet", MODES["default"], batch_size=2, image_size=32)
    first, losses = _stream(tmp_path, "a", spec, 2)
    other, _ = _stream(tmp_path, "b", spec, 2)
    assert first_difference(first, other) is None
    records = list(read_stream(first))
    phases = {r.phase for r in records}
    assert phases == {
        "init",
        "data",
        "forward_input",
        "forward_output",
        "backward_input",
        "backward_output",
        "weight_grad",
        "update",
    }
    modules = {r.module for r in records if r.phase == "weight_grad"}
    assert "layer4.1.conv2" in modules and "fc" in modules
    assert {r.iteration for r in records} == {0, 1} and len(losses) == 2


def test_a_different_seed_is_located_at_the_initial_weights(tmp_path):
    spec = TrialSpec("torch", "mlp", MODES["default"], batch_size=2)
    first, _ = _stream(tmp_path, "a", spec, 1)
    other, _ = _stream(
        tmp_path, "b", TrialSpec("torch", "mlp", MODES["default"], batch_size=2, seed=1), 1
    )
    divergence = describe(first_difference(first, other), (0, 1))
    assert divergence.phase == "init"
    assert "initial" in divergence.text()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("backward", "iteration 0, noisy, backward (input grad): inputs equal, output differs"),
        ("weight", "iteration 0, noisy, backward (weight grad): inputs equal, output differs"),
    ],
)
def test_locate_names_the_noisy_layer_and_phase(phase, expected):
    proc = run_cli(
        "verify",
        "--model",
        "noisy_layer",
        "--workload-arg",
        f"phase={phase}",
        "--modes",
        "deterministic",
        *TINY,
        "--locate",
        "--json",
        plugins=True,
    )
    assert proc.returncode == 1, proc.stderr
    verdict = json.loads(proc.stdout)["deterministic"]
    located = verdict["located"]
    assert located["module"] == "noisy" and located["iteration"] == 0
    assert located["text"].startswith(expected)
    assert 1e-5 < located["max_abs_diff"] < 1e-1
    assert located["nondeterministic_ops"] == ["put_"]
    assert verdict["reproducible"] is False


@pytest.mark.slow
def test_locate_on_a_reproducible_model_finds_nothing():
    proc = run_cli("verify", "--model", "mlp", "--modes", "default", *TINY, "--locate")
    assert proc.returncode == 0, proc.stderr
    assert "reproducible: yes" in proc.stdout and "located" not in proc.stdout


@pytest.mark.slow
def test_locate_in_tensorflow_names_the_noisy_layer_forward():
    proc = run_cli(
        "verify",
        "--framework",
        "tf",
        "--model",
        "noisy_layer",
        "--workload-arg",
        "phase=forward",
        "--modes",
        "default",
        *TINY,
        "--locate",
        plugins=True,
    )
    assert proc.returncode == 1, proc.stderr
    assert "located: iteration 0, noisy, forward: inputs equal, output differs" in proc.stdout


def test_verify_help_shows_the_diagnosis_options():
    proc = run_cli("verify", "--help")
    assert proc.returncode == 0
    for text in ("--locate", "--resume-at", "--restore", "--across", "verify --across a100.db"):
        assert text in proc.stdout
