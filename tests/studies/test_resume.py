"""`verify --resume-at N`: a resumed run against an uninterrupted one, and what was not restored."""

import json

import pytest
import torch
from conftest import run_cli

from nnr_profile.core.errors import ParameterError
from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialSpec
from nnr_profile.studies.locate import prepare_session
from nnr_profile.studies.resume import (
    PIECES,
    DataStream,
    ResumeSpec,
    capture_state,
    fingerprint,
    parse_restore,
    restore_state,
)
from nnr_profile.studies.verify import VerifySpec

TINY = ["--gpu", "cpu", "--batch-size", "4", "--iterations", "4", "--resume-at", "2"]


def test_parse_restore():
    assert parse_restore(None) == PIECES and parse_restore("all") == PIECES
    assert parse_restore("data, model") == ("model", "data")
    with pytest.raises(ParameterError, match="use all, or some of model"):
        parse_restore("model,weights")


def test_the_resume_point_must_lie_inside_the_run():
    trial = TrialSpec("torch", "mlp", MODES["default"], iterations=4)
    spec = VerifySpec(trial, (MODES["default"],))
    with pytest.raises(ParameterError, match="must lie inside the run"):
        ResumeSpec(spec, 4)
    tf_spec = VerifySpec(
        TrialSpec("tf", "mlp", MODES["default"], iterations=4), (MODES["default"],)
    )
    with pytest.raises(ParameterError, match="checks PyTorch workloads"):
        ResumeSpec(tf_spec, 2)


def test_fingerprints_see_every_bit():
    assert fingerprint({"a": torch.zeros(3)}) == fingerprint({"a": torch.zeros(3)})
    assert fingerprint({"a": torch.zeros(3)}) != fingerprint({"a": -torch.zeros(3)})
    assert fingerprint([1, (2, 3)]) != fingerprint([1, (2, 4)])


def test_restoring_every_piece_reproduces_the_state_in_process():
    spec = TrialSpec("torch", "mlp", MODES["default"], batch_size=4, workload_args={"dropout": 0.5})
    session, _ = prepare_session(spec)
    data = DataStream(session, spec)
    for _ in range(2):
        data.next_batch()
        session.step()
    saved = capture_state(session, data)
    fresh, _ = prepare_session(spec)
    fresh_data = DataStream(fresh, spec)
    before = capture_state(fresh, fresh_data)
    assert fingerprint(before["model"]) != fingerprint(saved["model"])
    restore_state(fresh, fresh_data, saved, PIECES)
    after = capture_state(fresh, fresh_data)
    assert all(fingerprint(after[p]) == fingerprint(saved[p]) for p in PIECES)


@pytest.mark.slow
def test_a_fully_restored_run_matches():
    proc = run_cli("verify", "--model", "mlp", *TINY, "--modes", "default", "--json")
    assert proc.returncode == 0, proc.stderr
    verdict = json.loads(proc.stdout)["default"]
    assert verdict["matches"] is True and verdict["first_divergent_iteration"] is None
    assert verdict["equal_before_checkpoint"] is True and verdict["weights_equal"] is True
    assert all(piece["equal_after_restore"] for piece in verdict["pieces"].values())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "args", "restore", "missing"),
    [
        ("mlp", ["--workload-arg", "dropout=0.5"], "model,optimizer,data", ["rng_torch"]),
        ("mlp", [], "model,rng_torch,data", ["optimizer"]),
        ("mlp", [], "model,optimizer,rng_torch", ["data"]),
        ("host_rng", [], "model,optimizer,rng_torch,data", ["rng_numpy", "rng_python"]),
    ],
)
def test_the_state_not_restored_is_named(model, args, restore, missing):
    proc = run_cli(
        "verify",
        "--model",
        model,
        *args,
        *TINY,
        "--modes",
        "default",
        "--restore",
        restore,
        "--json",
        plugins=True,
    )
    assert proc.returncode == 1, proc.stderr
    verdict = json.loads(proc.stdout)["default"]
    assert verdict["matches"] is False and verdict["equal_before_checkpoint"] is True
    assert verdict["not_restored"] == missing
    assert verdict["first_divergent_iteration"] >= 2
    assert "state not restored: " + ", ".join(missing) in verdict["explanation"]


def test_restore_needs_resume_at():
    proc = run_cli("verify", "--model", "mlp", "--gpu", "cpu", "--restore", "model")
    assert (
        proc.returncode == 2 and "--restore only applies together with --resume-at" in proc.stderr
    )
