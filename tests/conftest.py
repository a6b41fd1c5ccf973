"""Shared test helpers: run the real CLI in a subprocess, optionally with the test plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

PLUGINS = Path(__file__).parent / "plugins"
TINY = [
    "--gpu",
    "cpu",
    "--batch-size",
    "2",
    "--image-size",
    "32",
    "--iterations",
    "3",
    "--warmup",
    "1",
    "--repeats",
    "1",
]


def cli_env(plugins: bool = False) -> dict[str, str]:
    """The environment for a CLI subprocess (optionally with the misbehaving-workload plugin)."""
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["OMP_NUM_THREADS"] = "1"  # one thread per trial: no spin-wait collapse on a busy 2-core box
    if plugins:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGINS), env.get("PYTHONPATH")]))
    return env


def run_cli(
    *args: str, plugins: bool = False, timeout: float = 600, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run `nnr-profile ARGS` as a user would; returns the completed process (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "nnr_profile.cli", *args],
        capture_output=True,
        text=True,
        env=cli_env(plugins),
        timeout=timeout,
        cwd=cwd,
    )


def run_probe(script: Path) -> dict:
    """The JSON object a probe script prints last, run in a child (TF and torch crash in one)."""
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=cli_env(), timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_one_line_usage_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 2 with exactly one line on stderr, no traceback, holding every fragment."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def plugin_distribution(
    folder: Path, name: str, modules: dict[str, str], entry_points: str
) -> Path:
    """A plugin distribution `name` in `folder`: its modules (name -> source) and the text of its
    entry_points.txt; `folder` on the path installs it."""
    for module, source in modules.items():
        (folder / f"{module}.py").write_text(source)
    info = folder / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    return folder


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A store path in a fresh temporary folder."""
    return tmp_path / "results" / "nnr.db"


def write_celeba(root: Path, n_train: int = 24, n_test: int = 16, seed: int = 0) -> Path:
    """A tiny CelebA in torchvision's layout under root/celeba: real JPEGs, the real 40 columns.

    Images are 178x218 like the aligned faces; Blond_Hair follows the image's brightness so a
    model can learn it; one validation image is listed too (it must be ignored).
    """
    from PIL import Image

    from nnr_profile.workloads.celeba import ATTRIBUTES

    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    splits = [0] * n_train + [1] + [2] * n_test
    attr_lines, split_lines = [], []
    for i, split in enumerate(splits):
        name = f"{i + 1:06d}.jpg"
        blond = i % 2 == 0
        pixels = rng.integers(0, 100, (218, 178, 3), dtype=np.uint8) + (150 if blond else 0)
        Image.fromarray(pixels).save(folder / "img_align_celeba" / name, quality=90)
        values = rng.choice([-1, 1], len(ATTRIBUTES))
        values[ATTRIBUTES.index("Blond_Hair")] = 1 if blond else -1
        attr_lines.append(name + " " + " ".join(f"{v:2d}" for v in values))
        split_lines.append(f"{name} {split}")
    header = f"{len(splits)}\n" + " ".join(ATTRIBUTES) + " \n"
    (folder / "list_attr_celeba.txt").write_text(header + "\n".join(attr_lines) + "\n")
    (folder / "list_eval_partition.txt").write_text("\n".join(split_lines) + "\n")
    return root


@pytest.fixture
def celeba_dir(tmp_path: Path) -> Path:
    """A data folder holding a tiny CelebA (see `write_celeba`)."""
    return write_celeba(tmp_path / "data")


def write_mnist(root: Path, n_train: int = 64, n_test: int = 32, seed: int = 0) -> Path:
    """A tiny MNIST in torchvision's raw layout (IDX files, gunzipped); labels follow brightness."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for prefix, count in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        images = (rng.integers(0, 50, (count, 28, 28)) + 20 * labels[:, None, None]).astype(
            np.uint8
        )
        header = np.array([0x803, count, 28, 28], dtype=">i4").tobytes()
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
        header = np.array([0x801, count], dtype=">i4").tobytes()
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(header + labels.tobytes())
    return root


THROTTLED = {"n_samples": 12, "clock_noise": "throttled: sw_power_cap", "throttled": ["x"]}


def paired_store(path: Path, repeats: int = 5) -> Any:
    """A real store of a paired sweep whose deterministic trial of repeat 2 was throttled."""
    from nnr_profile.core.modes import parse_modes
    from nnr_profile.core.specs import TrialResult
    from nnr_profile.profiler.runner.sweep import SweepSpec, plan_sweep
    from nnr_profile.store.database import Store

    spec = SweepSpec(
        workloads=(("torch", "mlp"),),
        modes=tuple(parse_modes("default,deterministic")),
        repeats=repeats,
        iterations=6,
    )
    rng = np.random.default_rng(7)
    with Store(path) as store:
        for cell in plan_sweep(spec)[None]:
            scale = 1.2 if cell.mode.name == "deterministic" else 1.0
            times = list(10 * scale * np.exp(rng.normal(0, 0.03, cell.iterations)))
            throttled = cell.mode.name == "deterministic" and cell.repeat == 2
            store.record(
                TrialResult(
                    cell,
                    "ok",
                    times_ms=times,
                    losses=[0.1] * len(times),
                    wall_s=5.0,
                    device=THROTTLED if throttled else {},
                )
            )
    return spec


class PageTables(HTMLParser):
    """Row counts of each table[data-table], images and script elements of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, int] = {}
        self.images: list[str] = []
        self.scripts = 0
        self._table: str | None = None
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "table" and named.get("data-table"):
            self._table = named["data-table"]
            self.rows[self._table] = 0
        elif tag == "tbody":
            self._in_body = self._table is not None
        elif tag == "tr" and self._in_body:
            self.rows[self._table] += 1
        elif tag == "img":
            self.images.append(named.get("src") or "")
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table, self._in_body = None, False


def page_tables(path: Path) -> PageTables:
    """The parsed tables, images and scripts of the page at `path`."""
    parsed = PageTables()
    parsed.feed(path.read_text(encoding="utf-8"))
    return parsed
