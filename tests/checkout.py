"""What a test run leaves in the checkout: git's view of files that are new or changed.

The suite must write nothing there (its data dir, blobs, caches and builds go to
temporary directories), so tests/conftest.py compares the checkout before and after
every run. Files that Python and pytest write themselves are not the tests' doing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

# Bytecode (the Makefile turns it on), pytest's and ruff's caches, the virtual environment.
NOT_THE_TESTS = (
    *(":(exclude).venv", ":(exclude).pytest_cache", ":(exclude).ruff_cache"),
    ":(exclude,glob)**/__pycache__/**",
)
# Every file on its own, ignored ones too (data/ exists in a checkout that has run
# `make run`; a new file in it is what to catch), NUL-separated to keep odd names whole.
GIT_STATUS = (
    *("git", "--no-optional-locks", "status", "--porcelain=v1", "-z"),
    *("--ignored", "--untracked-files=all", "--", ".", *NOT_THE_TESTS),
)


def checkout_state(root: Path) -> set[str] | None:
    """Every file under `root` that git sees as untracked, ignored or changed, one
    `XY path` entry each; None where `root` is no git checkout (a source archive).
    """
    try:
        result = subprocess.run(
            GIT_STATUS,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return {entry for entry in result.stdout.split("\0") if entry}


def written(before: set[str] | None, after: set[str] | None) -> list[str]:
    """The entries that appeared between two states, sorted; none if either is unknown."""
    if before is None or after is None:
        return []
    return sorted(after - before)
