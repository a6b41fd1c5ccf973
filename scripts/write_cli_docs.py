"""Rewrite each `## nnr-profile COMMAND` section's text block in docs/cli.md with its `--help`.

.venv/bin/python scripts/write_cli_docs.py      # after changing a command's options
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

CLI_DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
SECTION = re.compile(r"^## (nnr-profile(?: [\w-]+)*)\n\n```text\n.*?^```\n", re.M | re.S)


def help_text(command: str) -> str:
    """`COMMAND --help` as a user sees it in an 80-column terminal."""
    words = command.split()[1:]
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run(
        [sys.executable, "-m", "nnr_profile.cli", *words, "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return done.stdout


def main() -> int:
    """Rewrite docs/cli.md in place; print how many sections were rewritten."""
    text = CLI_DOCS.read_text(encoding="utf-8")
    count = 0

    def rewrite(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return f"## {match.group(1)}\n\n```text\n{help_text(match.group(1))}```\n"

    CLI_DOCS.write_text(SECTION.sub(rewrite, text), encoding="utf-8")
    print(f"{count} sections of {CLI_DOCS} rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
