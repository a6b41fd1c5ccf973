import os
import stat
from pathlib import Path

import pytest

from nnr_profile.core.errors import ParameterError
from nnr_profile.core.params import SEED, Range, require_seed
from nnr_profile.core.paths import prepare_output_dir, prepare_output_file


def test_an_output_folder_is_created_and_a_file_in_the_way_is_named(tmp_path):
    assert prepare_output_dir(tmp_path / "a" / "b", "out").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ParameterError, match=r"out .*file is a file, not a folder") as info:
        prepare_output_dir(blocker / "deeper" / "report", "out")
    assert info.value.param == "out"
    with pytest.raises(ParameterError, match="is a file, not a folder"):
        prepare_output_file(blocker / "nnr.db", "db")
    with pytest.raises(ParameterError, match="is a folder; give a file path"):
        prepare_output_file(tmp_path, "db")
    assert not (blocker.parent / "deeper").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in read-only folders")
def test_a_read_only_folder_is_one_error(tmp_path):
    tmp_path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(ParameterError, match="cannot create or write in"):
            prepare_output_dir(tmp_path / "report", "out")
    finally:
        tmp_path.chmod(stat.S_IRWXU)


def test_ranges_refuse_nan_inf_bools_and_fractions_of_whole_numbers():
    unit = Range(min=0, max=1, max_open=True)
    assert unit.describe() == "a finite number of at least 0 and below 1"
    assert [unit.contains(v) for v in (0, 0.5, 1, float("nan"), float("inf"), True, "0")] == [
        True, True, False, False, False, False, False,
    ]  # fmt: skip
    assert SEED.contains(2**32 - 1) and not SEED.contains(2**32) and not SEED.contains(1.0)
    with pytest.raises(ParameterError, match="seed must be a whole number from 0 to 4294967286"):
        require_seed("seed", 2**32 - 5, count=10)


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux sysfs")
def test_an_os_error_creating_the_folder_is_one_error_even_for_root():
    with pytest.raises(ParameterError, match=r"db /sys/nnr-test/nnr.db: cannot create or write"):
        prepare_output_file("/sys/nnr-test/nnr.db", "db")
