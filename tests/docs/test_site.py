"""The documentation site builds strictly, the README is a front page, and the docs' examples hold.

The site is mkdocs + mkdocs-material + mkdocstrings (`pip install -e '.[docs]'`); its sources
are docs/, its config mkdocs.yml. Cheap command examples (every `--help`, `list`, `env`) run
here; every page with other examples says why they are not run.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
MKDOCS_YML = ROOT / "mkdocs.yml"

README_MAX_LINES = 250
NOT_RUN_MARKER = '!!! info "Examples on this page"'
# Commands the docs show that run here in seconds; the test runs each one.
CHEAP_EXAMPLES = ("nnr-profile list", "nnr-profile list --presets", "nnr-profile env")
COMMANDS = (
    "list",
    "env",
    "describe",
    "run",
    "report",
    "merge",
    "trace summarize",
    "trace diff",
    "verify",
    "variability",
    "ops",
    "analyze grad-snr",
    "analyze landscape",
    "gate",
    "compare",
)


def nav_pages() -> list[str]:
    """The Markdown files mkdocs.yml's nav names (read without a YAML parser)."""
    text = MKDOCS_YML.read_text(encoding="utf-8")
    nav = text[text.index("\nnav:") :]
    return re.findall(r":\s*([\w/.-]+\.md)\s*$", nav, re.M)


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", COLUMNS="100")
    return subprocess.run(
        [sys.executable, "-m", "nnr_profile.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )


def code_commands(text: str) -> list[str]:
    """`nnr-profile ...` command lines in indented or fenced code, comments and `$ ` dropped."""
    commands = []
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        stripped = line.strip().removeprefix("$ ")
        if (in_fence or line.startswith("    ")) and stripped.startswith("nnr-profile"):
            commands.append(stripped.split("  #")[0].split(" #")[0].rstrip(" \\"))
    return commands


def test_every_docs_page_is_in_the_nav_and_every_nav_page_exists():
    pages = nav_pages()
    on_disk = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(pages) == on_disk
    for required in ("architecture.md", "metrics.md", "study.md", "index.md", "quickstart.md"):
        assert required in pages


def test_the_readme_is_a_front_page_that_links_into_the_docs():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    assert "make demo" in text and "make test" in text
    assert "report.html" in text
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#[^)\s]*)?\)", text)
    assert len(set(links)) >= 10, links
    for link in links:
        assert (ROOT / link).is_file(), f"README links to {link}, which does not exist"
    for page in ("quickstart.md", "concepts.md", "commands.md", "api.md", "study.md"):
        assert f"docs/{page}" in links


def test_relative_links_between_docs_pages_point_at_pages():
    # mkdocs --strict checks these too; this runs without mkdocs installed
    for page in DOCS.rglob("*.md"):
        for target in re.findall(r"\]\(([^)#\s:]+\.md)(?:#[^)\s]*)?\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} links to missing {target}"


def test_each_page_with_examples_not_run_here_says_why():
    for page in DOCS.rglob("*.md"):
        text = page.read_text(encoding="utf-8")
        heavy = [
            c for c in code_commands(text) if c not in CHEAP_EXAMPLES and not c.endswith("--help")
        ]
        if heavy:
            assert NOT_RUN_MARKER in text, f"{page.name} runs {heavy[0]!r} without saying why"


def test_every_option_of_every_command_is_in_the_option_reference():
    reference = (DOCS / "cli.md").read_text(encoding="utf-8")
    top = cli("--help")
    assert top.returncode == 0, top.stderr
    listed = re.findall(r"^  (\w[\w-]*)\s{2,}", top.stdout.split("Commands:")[1], re.M)
    assert {c.split()[0] for c in COMMANDS} == set(listed)
    for command in COMMANDS:
        assert f"## nnr-profile {command}\n" in reference, f"no section for {command}"
        result = cli(*command.split(), "--help")
        assert result.returncode == 0, result.stderr
        section = reference.split(f"## nnr-profile {command}\n")[1].split("\n## ")[0]
        for option in sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", result.stdout))):
            assert option in section, f"'nnr-profile {command}' has {option}: add it to cli.md"


@pytest.mark.slow
@pytest.mark.parametrize("example", CHEAP_EXAMPLES)
def test_the_cheap_examples_in_the_docs_run(example):
    shown = [c for page in DOCS.rglob("*.md") for c in code_commands(page.read_text())]
    assert example in shown
    result = cli(*example.split()[1:], timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip()


def _mkdocs_available() -> bool:
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
    )


@pytest.mark.slow
def test_the_site_builds_strictly_with_every_page(tmp_path):
    if not _mkdocs_available():
        if os.environ.get("CI"):
            pytest.fail("CI needs the docs tools: pip install -e '.[docs]' (scripts/setup.sh)")
        pytest.skip("mkdocs, mkdocs-material or mkdocstrings[python] not installed (.[docs])")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(MKDOCS_YML), "-d", site],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for page in nav_pages():
        assert (site / page).with_suffix(".html").is_file(), page
    api = (site / "reference" / "api.html").read_text(encoding="utf-8")
    assert "open_store" in api and "Results" in api
    stats = (site / "reference" / "stats.html").read_text(encoding="utf-8")
    assert "sequential_interval" in stats
    assert (site / "search" / "search_index.json").is_file()
