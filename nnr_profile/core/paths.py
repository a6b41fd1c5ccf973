"""Output locations: create the folder up front and say in one line why it cannot be used."""

from __future__ import annotations

import tempfile
from pathlib import Path

from nnr_profile.core.errors import ParameterError


def _file_in_the_way(folder: Path) -> Path | None:
    """The first existing path of `folder` and its parents, when it is not a folder."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def prepare_output_dir(path: str | Path, param: str, shown: str | Path | None = None) -> Path:
    """Create folder `path` (given as parameter `param`) and check that files can be written there.

    A file in the way, a read-only or missing-permission folder, a full or read-only disk:
    each is a ParameterError naming `param` and the path (`shown`, when set), never an OSError.
    """
    folder = Path(path)
    shown = str(folder if shown is None else shown)
    blocker = _file_in_the_way(folder)
    if blocker is not None:
        raise ParameterError(
            param,
            "{path}: {blocker} is a file, not a folder; choose another path",
            path=shown,
            blocker=str(blocker),
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".nnr-write-check-"):
            pass
    except OSError as exc:
        raise ParameterError(
            param,
            "{path}: cannot create or write in {folder} ({reason}); choose another path",
            path=shown,
            folder=str(folder),
            reason=exc.strerror or type(exc).__name__,
        ) from exc
    return folder


def prepare_output_file(path: str | Path, param: str) -> Path:
    """Create the folder of file `path` (parameter `param`); a folder at `path` is refused."""
    file = Path(path)
    if file.is_dir():
        raise ParameterError(
            param, "{path} is a folder; give a file path inside it instead", path=str(file)
        )
    prepare_output_dir(file.parent, param, shown=file)
    return file
