"""Child processes: the task protocol, crash messages, group kill, timeout, death with a
killed parent.

The children here run tasks of a tiny real module (no framework), started through the real
`spawn_child`.
"""

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from nnr_profile.core.errors import UsageError
from nnr_profile.core.specs import STATUS_FAILED, STATUS_OK, STATUS_TIMEOUT
from nnr_profile.profiler.runner.child import (
    child_task,
    crash_message,
    error_line,
    spawn_child,
)
from nnr_profile.profiler.runner.lifeline import (
    FOLDER_PREFIX,
    live_processes,
    remove_stale_folders,
)

SLEEPER = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from pathlib import Path

    import numpy as np

    from nnr_profile.profiler.runner.child import child_task


    @child_task()
    def sleep(spec):
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        Path(spec["pids"]).write_text(f"{os.getpid()} {helper.pid}")
        time.sleep(spec["sleep"])
        return {"status": "ok"}


    @child_task(decode=lambda spec: spec["n"])
    def count(n):
        if n < 0:
            raise ValueError(f"cannot count to {n}")
        return {"n": n, "pid": os.getpid(), "values": np.arange(n, dtype=np.float32)}


    @child_task()
    def crash(spec):
        os.abort()


    ORPHAN = (
        "import subprocess, sys\\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'],"
        " start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\\n"
        "print(p.pid)\\n"
    )


    @child_task()
    def escape(spec):
        # two processes no process group holds: a setsid child, a double-forked orphan
        setsid = subprocess.Popen(
            [sys.executable, "-c", "import os, time; os.setsid(); time.sleep(300)"]
        )
        orphan = subprocess.run(
            [sys.executable, "-c", ORPHAN], capture_output=True, text=True, check=True
        )
        Path(spec["pids"]).write_text(f"{os.getpid()} {setsid.pid} {orphan.stdout.strip()}")
        if spec.get("crash"):
            os.abort()
        time.sleep(spec["sleep"])
        return {"status": "ok"}
    """
)
CUDA_PROBE = (
    "/venv/torch/cuda/__init__.py:228: UserWarning: CUDA initialization: The NVIDIA driver on "
    "your system is too old\n  return torch._C._cuda_getDeviceCount() > 0"
)


@pytest.fixture
def sleeper_env(tmp_path, monkeypatch):
    """An environment in which the tasks of `nnr_sleeper` are importable, here and in a child."""
    (tmp_path / "nnr_sleeper.py").write_text(SLEEPER, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("nnr_sleeper", None)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    yield env
    sys.modules.pop("nnr_sleeper", None)


@pytest.fixture(params=["cold", "warm"])
def start(request):
    """How the child starts: `warm` is None for a fresh interpreter, else the framework whose
    warm server forks it (`profiler.runner.warm`)."""
    return None if request.param == "cold" else "torch"


def _task(name: str):
    import nnr_sleeper

    return getattr(nnr_sleeper, name)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _pids(path: Path) -> list[int]:
    assert _wait_for(lambda: path.exists() and path.read_text().strip(), 30), "child never started"
    return [int(p) for p in path.read_text().split()]


def test_crash_message_names_the_signal_and_the_exception_not_the_last_line():
    stderr = "\n".join(
        [
            "Traceback (most recent call last):",
            '  File "x.py", line 1, in <module>',
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB",
            CUDA_PROBE,
        ]
    )
    message = crash_message(-signal.SIGSEGV, stderr)
    assert message.startswith("process killed by SIGSEGV before writing a result")
    assert message.endswith(": torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB")
    assert crash_message(3, "") == "process exited with code 3 before writing a result"


def test_error_line_falls_back_to_fatal_errors_then_to_the_last_non_warning_line():
    assert error_line("Fatal Python error: Aborted\n\nCurrent thread:\n" + CUDA_PROBE) == (
        "Fatal Python error: Aborted"
    )
    assert error_line("loading\n  segfault in libfoo.so\n" + CUDA_PROBE) == "segfault in libfoo.so"
    assert error_line(CUDA_PROBE) is None


def test_a_task_runs_in_a_child_and_its_arrays_come_back(sleeper_env, start):
    outcome = spawn_child(_task("count"), {"n": 5}, sleeper_env, timeout_s=60, warm=start)
    assert outcome.status == STATUS_OK, outcome.error
    assert outcome.result["n"] == 5 and outcome.result["pid"] != os.getpid()
    assert outcome.result["wall_s"] >= 0
    np.testing.assert_array_equal(outcome.result["values"], np.arange(5, dtype=np.float32))
    assert _task("count")(2)["n"] == 2  # the task is still a plain function here


def test_a_task_that_raises_or_crashes_comes_back_as_a_failed_value(sleeper_env, start):
    raised = spawn_child(_task("count"), {"n": -1}, sleeper_env, timeout_s=60, warm=start)
    assert raised.status == STATUS_FAILED and raised.result is None
    assert raised.error == "ValueError: cannot count to -1"
    assert "Traceback" in raised.traceback
    crashed = spawn_child(_task("crash"), {}, sleeper_env, timeout_s=60, warm=start)
    assert crashed.status == STATUS_FAILED and crashed.result is None
    assert crashed.error.startswith("process killed by SIGABRT before writing a result")


def _unregistered(spec):
    return {}


def test_only_a_registered_module_level_task_can_be_spawned():
    with pytest.raises(UsageError, match="not a child task"):
        spawn_child(_unregistered, {}, dict(os.environ))

    def local(spec):
        return {}

    with pytest.raises(UsageError, match="module level"):
        child_task()(local)


def test_a_timed_out_child_and_its_own_children_are_killed_and_its_folder_removed(
    sleeper_env, tmp_path, start
):
    spec = {"pids": str(tmp_path / "pids"), "sleep": 120}
    began = time.monotonic()
    outcome = spawn_child(_task("sleep"), spec, sleeper_env, timeout_s=3, warm=start)
    assert outcome.status == STATUS_TIMEOUT and time.monotonic() - began < 30
    for pid in _pids(tmp_path / "pids"):
        assert _wait_for(lambda pid=pid: not _alive(pid), 5), f"process {pid} outlived the timeout"
    assert not list(Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}{os.getpid()}-*"))


def test_what_a_finished_child_left_running_in_its_group_is_killed(sleeper_env, tmp_path):
    spec = {"pids": str(tmp_path / "pids"), "sleep": 0}
    outcome = spawn_child(_task("sleep"), spec, sleeper_env, timeout_s=60)
    assert outcome.status == STATUS_OK, outcome.error
    _, helper = _pids(tmp_path / "pids")
    assert _wait_for(lambda: not _alive(helper), 5)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_child_dies_with_its_killed_parent_and_takes_its_folder_along(
    sleeper_env, tmp_path, signum, start
):
    pids = tmp_path / "pids"
    parent_code = (
        "import sys\n"
        "from nnr_profile.profiler.runner.child import spawn_child\n"
        "from nnr_sleeper import sleep\n"
        f"spawn_child(sleep, {{'pids': {str(pids)!r}, 'sleep': 120}}, "
        f"dict(__import__('os').environ), timeout_s=300, warm={start!r})\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], env=sleeper_env)
    try:
        child, helper = _pids(pids)
        folders = list(Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}{parent.pid}-*"))
        assert len(folders) == 1
        servers = _warm_servers_of(parent.pid)
        assert len(servers) == (0 if start is None else 1)
        parent.send_signal(signum)
        parent.wait(10)
        for pid in (child, helper, *servers):
            assert _wait_for(lambda pid=pid: not _alive(pid), 5), f"{pid} outlived its parent"
        assert _wait_for(lambda: not folders[0].exists(), 5), "the child's folder was left"
    finally:
        parent.kill()
        parent.wait()


def _warm_servers_of(parent: int) -> list[int]:
    """The warm servers `parent` started (`profiler.runner.warm`)."""
    children = [pid for pid, ppid in live_processes().items() if ppid == parent]
    return [pid for pid in children if b"runner.warm" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def _left_the_group(pids: list[int]) -> None:
    """Assert the processes really left the child's process group (else the test proves nothing)."""
    child, *escaped = pids
    for pid in escaped:
        assert os.getpgid(pid) != os.getpgid(child) or not _alive(pid)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="subreaper and /proc: Linux")
@pytest.mark.parametrize(
    ("spec", "timeout_s", "status"),
    [
        ({"sleep": 0}, 60, STATUS_OK),
        ({"sleep": 120}, 3, STATUS_TIMEOUT),
        ({"sleep": 0, "crash": True}, 60, STATUS_FAILED),
    ],
    ids=["ends", "times-out", "crashes"],
)
def test_processes_that_left_the_group_die_with_the_trial(
    sleeper_env, tmp_path, spec, timeout_s, status, start
):
    pids = tmp_path / "pids"
    task, spec = _task("escape"), {**spec, "pids": str(pids)}
    outcome = spawn_child(task, spec, sleeper_env, timeout_s, warm=start)
    assert outcome.status == status, outcome.error
    escaped = _pids(pids)
    assert len(escaped) == 3
    for pid in escaped:
        assert _wait_for(lambda pid=pid: not _alive(pid), 5), f"process {pid} outlived its trial"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="subreaper and /proc: Linux")
def test_processes_that_left_the_group_die_with_a_killed_parent(sleeper_env, tmp_path, start):
    pids = tmp_path / "pids"
    parent_code = (
        "from nnr_profile.profiler.runner.child import spawn_child\n"
        "from nnr_sleeper import escape\n"
        f"spawn_child(escape, {{'pids': {str(pids)!r}, 'sleep': 120}}, "
        f"dict(__import__('os').environ), timeout_s=300, warm={start!r})\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], env=sleeper_env)
    try:
        escaped = _pids(pids)
        _left_the_group(escaped)
        parent.kill()
        parent.wait(10)
        for pid in escaped:
            assert _wait_for(lambda pid=pid: not _alive(pid), 5), f"{pid} outlived its parent"
    finally:
        parent.kill()
        parent.wait()


def test_stale_folders_of_dead_owners_are_removed_and_live_ones_kept(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = tmp_path / f"{FOLDER_PREFIX}{gone.pid}-abc"
    live = tmp_path / f"{FOLDER_PREFIX}{os.getpid()}-def"
    foreign = tmp_path / f"{FOLDER_PREFIX}xyz"
    for folder in (stale, live, foreign):
        (folder / "sub").mkdir(parents=True)
    assert remove_stale_folders(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and foreign.exists()
