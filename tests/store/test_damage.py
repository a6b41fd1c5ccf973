"""Damaged stores (real files with overwritten pages) give one line that names the file."""

import shutil

import pytest
from conftest import TINY, run_cli
from store_samples import damage, filled_store, pages, root_page

from nnr_profile.core.errors import NnrError
from nnr_profile.store.database import Store
from nnr_profile.store.merge import check_stores, merge_stores, open_results


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """One real store of many pages, copied by each test before damaging it."""
    return filled_store(tmp_path_factory.mktemp("clean") / "nnr.db")


def _damaged(clean, tmp_path, page):
    path = tmp_path / "nnr.db"
    shutil.copyfile(clean, path)
    damage(path, page(path) if callable(page) else page)
    return path


def test_a_damaged_middle_page_is_noticed_when_opening_for_writing(clean, tmp_path):
    path = _damaged(clean, tmp_path, lambda p: pages(p) // 2)
    with pytest.raises(NnrError, match=r"is damaged \(.*\); `sqlite3 .*\.recover") as error:
        Store(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(NnrError, match="is damaged"):
        check_stores(path)


def test_a_damaged_page_that_reading_skips_is_found_by_the_check(clean, tmp_path):
    path = _damaged(clean, tmp_path, lambda p: root_page(p, "sqlite_autoindex_trials_1"))
    with Store(path, create=False) as store:
        assert len(store.trials()) == 60
    with pytest.raises(NnrError, match="is damaged"):
        Store(path, create=False, check=True)
    with pytest.raises(NnrError, match="is damaged"):
        Store(path)


def test_reading_a_damaged_page_is_an_nnr_error_not_a_traceback(clean, tmp_path):
    path = _damaged(clean, tmp_path, lambda p: root_page(p, "iterations"))
    with Store(path, create=False) as store:
        assert len(store.trials()) == 60
        with pytest.raises(NnrError, match=r"is damaged \(database disk image is malformed"):
            store.iterations()
    with pytest.raises(NnrError, match="is damaged"), open_results(path) as store:
        store.iterations()


def test_a_damaged_first_page_is_named(clean, tmp_path):
    path = _damaged(clean, tmp_path, 1)
    for create in (True, False):
        with pytest.raises(NnrError, match="not an nnr-profile store, or its first page is dam"):
            Store(path, create=create)


def test_a_damaged_source_leaves_no_target_and_a_damaged_target_is_noticed(clean, tmp_path):
    bad = _damaged(clean, tmp_path, lambda p: pages(p) // 2)
    target = tmp_path / "out" / "merged.db"
    with pytest.raises(NnrError, match=f"the store {bad} is damaged"):
        merge_stores([clean, bad], target)
    assert not target.exists() and list(target.parent.glob("*")) == []
    good = tmp_path / "good.db"
    shutil.copyfile(clean, good)
    with pytest.raises(NnrError, match=f"the store {bad} is damaged"):
        merge_stores([good], bad)


@pytest.mark.slow
def test_report_and_run_on_a_damaged_store_say_so_in_one_line(clean, tmp_path):
    path = _damaged(clean, tmp_path, lambda p: root_page(p, "iterations"))
    out = tmp_path / "report"
    for args in (
        ("report", "--db", str(path), "--out", str(out)),
        ("report", "--check", "--db", str(path), "--out", str(out)),
        ("run", "--db", str(path), "--model", "mlp", "--framework", "torch", *TINY),
    ):
        proc = run_cli(*args)
        assert proc.returncode == 2, proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert "Traceback" not in proc.stderr, proc.stderr
        assert last.startswith("nnr-profile: error: the store") and "is damaged" in last, last
        assert ".recover" in last
    index = _damaged(clean, tmp_path, lambda p: root_page(p, "sqlite_autoindex_trials_1"))
    proc = run_cli("report", "--check", "--db", str(index), "--out", str(out))
    assert proc.returncode == 2 and "is damaged" in proc.stderr, proc.stderr


def test_plain_report_and_compare_check_a_store_that_is_not_large(clean, tmp_path):
    index = _damaged(clean, tmp_path, lambda p: root_page(p, "sqlite_autoindex_trials_1"))
    out = tmp_path / "out"
    for args in (
        ("report", "--db", str(index), "--out", str(out)),
        ("compare", str(clean), str(index), "--out", str(out)),
    ):
        proc = run_cli(*args)
        assert proc.returncode == 2 and "is damaged" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


def test_a_large_store_read_unchecked_says_so(clean, monkeypatch):
    from nnr_profile.reports.load import load_inputs, unchecked_note
    from nnr_profile.store import merge

    monkeypatch.setattr(merge, "AUTO_CHECK_BYTES", 1)
    with open_results(clean) as store:
        assert store.checked is False and load_inputs(store).checked is False
    assert "without a damage check" in unchecked_note(clean)
    with open_results(clean, check=True) as store:
        assert store.checked is True
