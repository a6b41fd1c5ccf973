"""Failed writes and misleading messages, as a user meets them: a full device, a closed pipe,
a read-only merge target, a missing package, shell syntax in --task-python."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import cli_env, paired_store, run_cli
from fixtures_traces import fixture

from nnr_profile.core.errors import MissingDependencyError
from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialResult, TrialSpec
from nnr_profile.store.database import Store

FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not FULL.exists(), reason="no /dev/full on this system")


def run_to_full(*args: str) -> subprocess.CompletedProcess[str]:
    """`nnr-profile ARGS > /dev/full`, the real device."""
    with FULL.open("w") as full:
        return subprocess.run(
            [sys.executable, "-m", "nnr_profile.cli", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(False),
            timeout=300,
        )


def assert_write_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 74, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("nnr-profile: error: cannot write") and needle in lines[0]


@needs_dev_full
@pytest.mark.parametrize("output_format", ["markdown", "csv", "json"])
def test_trace_summarize_to_a_full_device_is_one_line_exit_74(output_format: str) -> None:
    path = str(fixture("kineto/hta_triton_example.json.gz"))
    proc = run_to_full("trace", "summarize", path, "--format", output_format)
    assert_write_error(proc, "standard output (No space left on device)")


@needs_dev_full
def test_trace_diff_and_help_to_a_full_device_are_one_line_exit_74() -> None:
    path = str(fixture("kineto/hta_triton_example.json.gz"))
    assert_write_error(run_to_full("trace", "diff", path, path), "No space left on device")
    assert_write_error(run_to_full("--help"), "No space left on device")


def test_a_closed_pipe_is_one_line_exit_74() -> None:
    base = fixture("kineto/hta_trace_diff_control.json.gz")
    other = fixture("kineto/hta_trace_diff_test.json.gz")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nnr_profile.cli", "trace", "diff", str(base), str(other)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(False),
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader goes away before the 70 KB table is written
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 74, stderr
    assert stderr.strip().splitlines() == [
        "nnr-profile: error: cannot write the output (Broken pipe: its reader closed it)"
    ]


@needs_dev_full
def test_gate_keeps_its_status_when_writing_works_and_says_74_when_not(tmp_path: Path) -> None:
    db = tmp_path / "nnr.db"
    paired_store(db)
    args = ("gate", "--from-db", str(db), "--max-ratio", "1.5", "--out", str(tmp_path))
    assert run_cli(*args).returncode == 0
    assert_write_error(run_to_full(*args), "standard output")
    failed = tmp_path / "failed.db"
    with Store(failed) as store:
        for mode in ("default", "fast"):
            for repeat in range(2):
                spec = TrialSpec("torch", "mlp", MODES[mode], repeat=repeat, iterations=3)
                store.record(TrialResult(spec, "failed", error="RuntimeError: no kernel"))
    failing = ("gate", "--from-db", str(failed), "--mode", "fast", "--max-ratio", "1.3")
    proc = run_cli(*failing, "--out", str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert_write_error(run_to_full(*failing, "--out", str(tmp_path)), "standard output")


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` made unwritable for real: permissions, or for root (who ignores them) the
    immutable attribute; skips where neither holds."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        path.parent.chmod(0o555)
        try:
            yield
        finally:
            path.parent.chmod(0o755)
            path.chmod(0o644)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a file read-only as root here (no chattr +i)")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def _store(path: Path, repeat: int) -> Path:
    with Store(path) as store:
        spec = TrialSpec("torch", "mlp", MODES["default"], repeat=repeat, iterations=3)
        store.record(TrialResult(spec, "ok", times_ms=[1.0, 2.0, 3.0], losses=[0.1] * 3))
    return path


def test_merge_into_a_read_only_target_names_the_target(tmp_path: Path) -> None:
    source, target = _store(tmp_path / "a.db", 0), _store(tmp_path / "target.db", 1)
    with read_only(target):
        proc = run_cli("merge", str(source), "--db", str(target))
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert f"cannot write the merge target {target}" in line and "a.db" not in line


def test_nsys_without_nvtx_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from nnr_profile.profiler.collectors.nsys import find_nvtx

    find_nvtx()  # a dependency: installed with nnr-profile
    monkeypatch.setitem(sys.modules, "nvtx", None)  # what Python sees without the package
    with pytest.raises(MissingDependencyError, match=r"needs the nvtx package.*pip install"):
        find_nvtx()


@pytest.mark.parametrize("command", ["python; rm -rf x", "python | tee log", "$HOME/python"])
def test_task_python_with_shell_syntax_is_refused_before_anything_runs(
    command: str, tmp_path: Path
) -> None:
    db = tmp_path / "nnr.db"
    proc = run_cli(
        "run", "--launcher", "slurm", "--partition", "gpu", "--task-python", command,
        "--model", "mlp", "--db", str(db),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("nnr-profile: error: --task-python") and "shell syntax" in line
    assert not db.exists()
