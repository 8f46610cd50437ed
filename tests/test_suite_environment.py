"""The suite runs the same whatever the shell exports, and writes nothing into the checkout.

Every run compares the checkout before and after (tests/conftest.py, tests/checkout.py)
and fails if it wrote there; the tests below check that comparison and the settings
that keep the run's files in its own temporary data dir.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings

from forge import settings as forge_settings
from tests import checkout

ROOT = Path(__file__).resolve().parents[1]

# A shell set up to run a site: each of these changes an outcome the tests assert, or
# where the run writes, if the test settings let it through.
SITE_SHELL = {
    "DJANGO_SETTINGS_MODULE": "forge.settings",
    # Challenges would name https://cr.example.com/v2/token as the realm.
    "FORGE_EXTERNAL_URL": "https://cr.example.com",
    # An anonymous pull of a public image would be 401.
    "FORGE_REQUIRE_SIGNIN_VIEW": "true",
    "FORGE_CACHE_URL": "redis://127.0.0.1:1/0",
    "FORGE_STORAGE": "s3",
    "FORGE_S3_BUCKET": "no-such-bucket",
    "FORGE_SECRET_KEY": "the-site-s-secret",
    "FORGE_TOKEN_LIFETIME": "60",
    "PROMETHEUS_MULTIPROC_DIR": "/nonexistent/metrics",
    "HOST": "0.0.0.0",
    "PORT": "1",
}


def test_the_run_has_a_temporary_data_dir_of_its_own():
    data_dir = Path(settings.DATA_DIR)

    assert data_dir != ROOT / "data"
    assert data_dir.parent == Path(tempfile.gettempdir())
    assert os.environ["FORGE_DATA_DIR"] == str(data_dir)
    assert (data_dir / "secret_key").read_text().strip() == settings.SECRET_KEY
    assert Path(forge_settings.CACHES["default"]["LOCATION"]).parent == data_dir


def test_no_forge_variable_of_the_shell_reaches_the_run():
    assert [name for name in os.environ if name.startswith("FORGE_")] == ["FORGE_DATA_DIR"]
    assert not {"HOST", "PORT", "PROMETHEUS_MULTIPROC_DIR"} & set(os.environ)
    assert settings.EXTERNAL_URL == ""
    assert settings.REGISTRY["TOKEN_LIFETIME"] == 3600
    assert settings.PACKAGES["REQUIRE_SIGNIN_VIEW"] is False


def test_a_run_from_a_shell_set_up_for_a_site_passes(tmp_path):
    shell_data = tmp_path / "shell-data"
    env = {**os.environ, **SITE_SHELL, "FORGE_DATA_DIR": str(shell_data)}
    # On PostgreSQL the child's test database would be this run's own: SQLite in memory.
    env.pop("DATABASE_URL", None)
    matrix = "tests/registry/test_access_matrix.py::test_access_matrix"
    tests = [
        f"{__file__}::test_the_run_has_a_temporary_data_dir_of_its_own",
        f"{__file__}::test_no_forge_variable_of_the_shell_reaches_the_run",
        f"{matrix}[public-user|anonymous|push-blob|basic]",
        f"{matrix}[public-user|anonymous|pull-manifest|bearer]",
    ]

    # Without schemathesis' plugin, a second of start-up this run has no use for, and
    # with a basetemp of its own: in the shared one it would delete older runs' at exit.
    options = ["-p", "no:cacheprovider", "-p", "no:schemathesis", "-q"]
    options += ["--basetemp", str(tmp_path / "basetemp")]

    result = subprocess.run(
        [sys.executable, "-m", "pytest", *options, *tests],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"{len(tests)} passed" in result.stdout, result.stdout[-3000:]
    assert not shell_data.exists()


def test_hypothesis_keeps_its_caches_in_the_runs_data_dir():
    assert os.environ["HYPOTHESIS_STORAGE_DIRECTORY"].startswith(str(settings.DATA_DIR))


def test_a_file_a_run_writes_into_the_checkout_is_found_and_bytecode_is_not(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("data/\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secret_key").write_text("kept")
    before = checkout.checkout_state(tmp_path)

    (tmp_path / "data" / "forge.sqlite3").write_text("")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "conftest.cpython-311.pyc").write_text("")
    (tmp_path / "notes.txt").write_text("")

    after = checkout.checkout_state(tmp_path)
    assert checkout.written(before, after) == ["!! data/forge.sqlite3", "?? notes.txt"]


def test_outside_a_git_checkout_nothing_is_compared(tmp_path):
    assert checkout.checkout_state(tmp_path / "missing") is None
    assert checkout.written(None, set()) == []
