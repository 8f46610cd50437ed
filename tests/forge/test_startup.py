"""A misconfigured site stops with one line and exit status 2 (forge/startup.py).

The subprocess tests start `manage.py` and gunicorn as `make run` does, each with one
misconfiguration in its environment, and read what an operator would see.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from botocore.config import Config
from django.db import connection, transaction
from django.db.utils import DatabaseError, OperationalError, load_backend

from forge import startup
from forge.environment import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# Long enough for a slow machine; a server that boots workers instead of stopping
# (the old behaviour) runs into it.
TIMEOUT = 30
# Inherited variables that would change what the child reads; each test sets its own.
DROPPED = ("DATABASE_URL", "HOST", "PORT", "PROMETHEUS_MULTIPROC_DIR", "TMPDIR")
GUNICORN_BANNER = re.compile(r"^\[[^]]+\] \[\d+\] \[INFO\] Starting gunicorn ")
PASSWORD = "hunter2"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def refused_database_url() -> str:
    """A PostgreSQL URL (with a password) on a loopback port nothing listens on."""
    return f"postgres://forge:{PASSWORD}@127.0.0.1:{free_port()}/forge"


@pytest.fixture
def child_env(tmp_path):
    """Make the environment of a child process: this test's data dir and temporary
    directory, one worker, a free port, and the given variables.
    """

    def make(**variables: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in DROPPED and not key.startswith("FORGE_")
        }
        tmp = tmp_path / "tmp"
        tmp.mkdir(exist_ok=True)
        env.update(
            {
                "FORGE_DATA_DIR": str(tmp_path / "data"),
                "FORGE_WORKERS": "1",
                "FORGE_THREADS": "1",
                "PORT": str(free_port()),
                "TMPDIR": str(tmp),
            }
        )
        env.update(variables)
        return env

    return make


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def gunicorn(env: dict[str, str]) -> subprocess.CompletedProcess:
    """gunicorn as `make run` starts it; killed with its workers if it does not exit."""
    argv = [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "forge.wsgi:application"]
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"gunicorn did not stop within {TIMEOUT} s:\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def the_one_line(result: subprocess.CompletedProcess, *, gunicorn_banner: bool = False) -> str:
    """The single `forge: ` line the process ended with; fails on anything else.

    gunicorn logs its own start line before its master checks the site.
    """
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    if gunicorn_banner:
        lines = [line for line in lines if not GUNICORN_BANNER.match(line)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("forge: "), result.stderr
    assert result.returncode == 2, result.stderr
    return lines[0]


# manage.py


@pytest.mark.parametrize(
    ("variables", "variable"),
    [
        ({"FORGE_STORAGE": "s4"}, "FORGE_STORAGE"),
        ({"DATABASE_URL": f"postgres://forge:{PASSWORD}@127.0.0.1:notaport/x"}, "DATABASE_URL"),
        ({"FORGE_DATA_DIR": "/proc/forge-data"}, "FORGE_DATA_DIR"),
    ],
)
def test_manage_py_with_a_bad_value_prints_one_line_naming_the_variable(
    child_env, variables, variable
):
    line = the_one_line(manage(child_env(**variables), "check"))

    assert variable in line
    assert PASSWORD not in line


def test_manage_py_with_the_data_dir_under_a_file_names_forge_data_dir(child_env, tmp_path):
    (tmp_path / "a-file").write_text("")

    line = the_one_line(
        manage(child_env(FORGE_DATA_DIR=str(tmp_path / "a-file" / "data")), "check")
    )

    assert "FORGE_DATA_DIR" in line
    assert "a-file" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to a read-only directory")
def test_manage_py_with_a_read_only_data_dir_names_forge_data_dir(child_env, tmp_path):
    data = tmp_path / "read-only"
    data.mkdir(mode=0o555)

    line = the_one_line(manage(child_env(FORGE_DATA_DIR=str(data)), "check"))

    assert "FORGE_DATA_DIR" in line
    assert "not writable" in line


def test_migrate_with_an_unreachable_database_prints_one_line_without_the_password(child_env):
    line = the_one_line(manage(child_env(DATABASE_URL=refused_database_url()), "migrate"))

    assert "cannot reach the database at postgres://forge:***@127.0.0.1:" in line
    assert "(DATABASE_URL)" in line
    assert "Connection refused" in line
    assert PASSWORD not in line


@pytest.mark.postgres
def test_migrate_with_a_missing_postgresql_database_says_it_does_not_exist(child_env):
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://postgres@127.0.0.1/forge")
    missing = urlunsplit(urlsplit(url)._replace(path="/forge_no_such_database"))

    line = the_one_line(manage(child_env(DATABASE_URL=missing), "migrate"))

    assert 'database "forge_no_such_database" does not exist' in line
    assert "DATABASE_URL" in line


def test_runserver_with_an_unreachable_database_stops_instead_of_serving(child_env):
    env = child_env(DATABASE_URL=refused_database_url())

    line = the_one_line(manage(env, "runserver", f"127.0.0.1:{env['PORT']}"))

    assert "DATABASE_URL" in line


def test_traceback_option_shows_the_whole_traceback(child_env):
    result = manage(child_env(FORGE_STORAGE="s4"), "check", "--traceback")

    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "ConfigurationError: FORGE_STORAGE must be fs or s3" in result.stderr


# A command on a database `make run` never migrated: most often not the server's


def test_a_command_on_a_missing_database_says_so_in_one_line_and_leaves_no_file(
    child_env, tmp_path
):
    database = tmp_path / "data" / "forge.sqlite3"

    line = the_one_line(manage(child_env(), "createuser", "erin", "--password", "pw"))

    assert line == (
        f"forge: there is no database {database} (FORGE_DATA_DIR); run `make run` once or "
        "`manage.py migrate` to make it, or set FORGE_DATA_DIR to the data dir the server uses"
    )
    assert not database.exists()


def test_a_command_on_a_database_without_tables_names_it_and_the_fix(child_env, tmp_path):
    database = tmp_path / "data" / "forge.sqlite3"
    database.parent.mkdir()
    database.touch()

    line = the_one_line(manage(child_env(), "ensureadmin"))

    assert line == (
        f"forge: the database {database} (FORGE_DATA_DIR) has no tables; run `make run` once "
        "or `manage.py migrate` to make them, or set FORGE_DATA_DIR to the data dir the "
        "server uses"
    )
    assert database.exists()


def test_a_command_on_a_partly_migrated_database_asks_for_migrate(child_env, tmp_path):
    env = child_env()
    assert manage(env, "migrate", "-v0").returncode == 0
    # As if the owners' table came with a migration not applied yet.
    with contextlib.closing(sqlite3.connect(tmp_path / "data" / "forge.sqlite3")) as db, db:
        db.execute("DROP TABLE packages_core_owner")
        db.execute(
            "DELETE FROM django_migrations WHERE id = (SELECT max(id) FROM django_migrations"
            " WHERE app = 'packages_core')"
        )

    line = the_one_line(manage(env, "createuser", "erin", "--password", "pw"))

    assert "(FORGE_DATA_DIR) lacks 1 migration(s), the first packages_core." in line
    assert line.endswith("; run `manage.py migrate` (`make run` does, before it serves)")


@pytest.mark.django_db
def test_a_missing_table_in_a_migrated_database_is_a_bug_and_shows_as_one():
    with (
        pytest.raises(DatabaseError),
        startup.unmigrated_database_exits(),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT * FROM no_such_table")


def assert_short_check_report(result: subprocess.CompletedProcess, check_id: str) -> None:
    """Django's report of one system check error: seven lines, the hint naming the fix."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 7, result.stderr
    assert f"({check_id})" in result.stderr


def test_manage_py_reports_s3_without_a_bucket_in_the_short_system_check_report(child_env):
    result = manage(child_env(FORGE_STORAGE="s3"), "migrate")

    assert_short_check_report(result, "packages.E004")
    assert "FORGE_S3_BUCKET" in result.stderr


def unreachable_s3(child_env) -> dict[str, str]:
    return child_env(
        FORGE_STORAGE="s3",
        FORGE_S3_BUCKET="blobs",
        FORGE_S3_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
        FORGE_S3_ACCESS_KEY="key",
        FORGE_S3_SECRET_KEY="secret",
    )


def test_manage_py_commands_do_not_ask_for_the_s3_bucket(child_env):
    result = manage(unreachable_s3(child_env), "check")

    assert result.returncode == 0, result.stderr
    assert "packages.E005" not in result.stdout + result.stderr


def test_manage_py_check_deploy_reports_an_s3_endpoint_that_does_not_answer(child_env):
    result = manage(unreachable_s3(child_env), "check", "--deploy")

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "(packages.E005)" in result.stderr
    assert "FORGE_S3_ENDPOINT_URL" in result.stderr


# gunicorn


@pytest.mark.parametrize(
    ("variables", "variable"),
    [
        ({"FORGE_STORAGE": "s4"}, "FORGE_STORAGE"),
        ({"FORGE_DATA_DIR": "/proc/forge-data"}, "FORGE_DATA_DIR"),
        ({"FORGE_STORAGE": "s3"}, "FORGE_S3_BUCKET"),
    ],
)
def test_gunicorn_with_a_misconfiguration_stops_in_the_master_with_one_line(
    child_env, tmp_path, variables, variable
):
    result = gunicorn(child_env(**variables))

    line = the_one_line(result, gunicorn_banner=True)
    assert variable in line
    assert "Booting worker" not in result.stdout + result.stderr
    # Its metrics directory goes too: on_exit does not run when the start fails.
    assert list((tmp_path / "tmp").glob("forge-metrics-*")) == []


@pytest.mark.parametrize(
    ("variables", "variable"),
    [
        ({"PORT": "http"}, "PORT"),
        ({"FORGE_HEADER_TIMEOUT": "soon"}, "FORGE_HEADER_TIMEOUT"),
    ],
)
def test_gunicorn_with_a_bad_server_setting_stops_before_logging_anything(
    child_env, variables, variable
):
    line = the_one_line(gunicorn(child_env(**variables)))

    assert variable in line


def test_gunicorn_with_an_s3_endpoint_that_does_not_answer_stops_with_one_line(child_env):
    result = gunicorn(unreachable_s3(child_env))

    line = the_one_line(result, gunicorn_banner=True)
    assert "(packages.E005)" in line
    assert "Booting worker" not in result.stdout + result.stderr


def test_gunicorn_with_an_unreachable_database_stops_without_booting_workers(child_env):
    result = gunicorn(child_env(DATABASE_URL=refused_database_url()))

    line = the_one_line(result, gunicorn_banner=True)
    assert "(DATABASE_URL)" in line
    assert PASSWORD not in result.stdout + result.stderr
    assert "Booting worker" not in result.stdout + result.stderr


def test_gunicorn_on_a_port_in_use_says_so_once_and_at_once(child_env):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()

        result = gunicorn(child_env(PORT=str(port)))

        elapsed = time.monotonic() - started
    line = the_one_line(result, gunicorn_banner=True)
    assert f"127.0.0.1:{port} (HOST, PORT): Address already in use" in line
    assert "Connection in use" not in result.stderr
    # gunicorn alone tries five times a second apart.
    assert elapsed < 4


# the pieces


def test_a_listening_port_cannot_be_listened_on_and_a_free_one_can():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(ConfigurationError) as raised:
            startup.check_listen_addresses([("127.0.0.1", port)])
    assert raised.value.variable == "PORT"

    startup.check_listen_addresses([("127.0.0.1", free_port()), "/run/forge.sock"])


def test_an_address_not_of_this_machine_names_host():
    with pytest.raises(ConfigurationError) as raised:
        startup.check_listen_addresses([("192.0.2.1", free_port())])

    assert raised.value.variable == "HOST"


def test_inherited_sockets_are_not_checked():
    assert startup.inherits_sockets({"LISTEN_FDS": "1"})
    assert startup.inherits_sockets({"GUNICORN_FD": "5"})
    assert not startup.inherits_sockets({})


def sqlite_connection(name: str):
    return load_backend("django.db.backends.sqlite3").DatabaseWrapper(
        {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            "OPTIONS": {},
            "TIME_ZONE": None,
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": False,
            "AUTOCOMMIT": True,
        },
        "probe",
    )


def test_only_a_failure_to_connect_counts_as_an_unreachable_database(tmp_path, django_db_blocker):
    unopenable = sqlite_connection(str(tmp_path / "missing" / "db.sqlite3"))
    working = sqlite_connection(":memory:")
    # Connections of the test's own, to no test database.
    with django_db_blocker.unblock():
        with pytest.raises(OperationalError) as connecting:
            unopenable.ensure_connection()
        try:
            with pytest.raises(OperationalError) as querying, working.cursor() as cursor:
                cursor.execute("SELECT * FROM no_such_table")
        finally:
            working.close()

    assert startup.raised_while_connecting(connecting.value)
    assert not startup.raised_while_connecting(querying.value)


@pytest.mark.parametrize(
    ("error", "missing"),
    [
        (OperationalError("no such table: auth_user"), True),
        (OperationalError("database is locked"), False),
    ],
)
def test_a_missing_table_is_told_from_other_query_errors(error, missing):
    assert startup.is_missing_table(error) is missing


def test_a_missing_postgresql_table_is_told_by_its_sqlstate():
    class UndefinedTable(Exception):
        sqlstate = startup.UNDEFINED_TABLE

    error = DatabaseError('relation "auth_user" does not exist')
    error.__cause__ = UndefinedTable()

    assert startup.is_missing_table(error)


def test_a_query_error_is_not_turned_into_a_misconfiguration():
    error = OperationalError("no such table: auth_user")

    with pytest.raises(OperationalError), startup.misconfiguration_exits():
        raise error


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (
            'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
            'FATAL:  database "x" does not exist',
            'database "x" does not exist',
        ),
        (
            'connection failed: connection to server at "127.0.0.1", port 5999 failed: '
            "Connection refused\n\tIs the server running on that host and accepting TCP/IP "
            "connections?",
            "Connection refused",
        ),
        (
            "connection failed: Multiple connection attempts failed. All failures were:\n"
            "- host: 'localhost', port: '5999', hostaddr: '::1': connection failed: "
            'connection to server at "::1", port 5999 failed: Connection refused\n'
            "- host: 'localhost', port: '5999', hostaddr: '127.0.0.1': connection failed: "
            'connection to server at "127.0.0.1", port 5999 failed: Connection refused\n'
            "\tIs the server running on that host and accepting TCP/IP connections?",
            "Connection refused",
        ),
        (
            "failed to resolve host 'db.invalid': [Errno -2] Name or service not known",
            "failed to resolve host 'db.invalid': [Errno -2] Name or service not known",
        ),
        ("unable to open database file", "unable to open database file"),
    ],
)
def test_the_drivers_reason_is_cut_to_a_few_words(message, reason):
    assert startup.connection_failure_reason(message) == reason


@pytest.mark.parametrize(
    ("reason", "fix"),
    [
        ('database "x" does not exist', "create the database"),
        ('password authentication failed for user "forge"', "fix the user or password"),
        ('role "forge" does not exist', "fix the user or password"),
        ("Connection refused", "start the database server"),
    ],
)
def test_an_unreachable_database_gets_the_fix_for_its_reason(reason, fix):
    error = startup.database_unreachable(
        OperationalError(f"connection failed: x failed: FATAL:  {reason}"),
        {"DATABASE_URL": f"postgres://forge:{PASSWORD}@db.internal:5432/x"},
    )

    assert error.variable == "DATABASE_URL"
    assert str(error).startswith(
        "cannot reach the database at postgres://forge:***@db.internal:5432/x (DATABASE_URL): "
    )
    assert fix in error.fix
    assert PASSWORD not in str(error)


def test_the_default_sqlite_database_that_cannot_be_opened_names_the_data_dir():
    error = startup.database_unreachable(OperationalError("unable to open database file"), {})

    assert error.variable == "FORGE_DATA_DIR"
    assert "cannot open the SQLite database" in str(error)


def test_the_start_up_checks_ask_for_the_s3_bucket(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "packages": {
            "BACKEND": "packages_core.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "blobs",
                "endpoint_url": f"http://127.0.0.1:{free_port()}",
                "access_key": "key",
                "secret_key": "secret",
                "region_name": "us-east-1",
                "client_config": Config(retries={"max_attempts": 1}),
            },
        },
    }

    with pytest.raises(startup.SystemChecksFailed) as caught:
        startup.check_site()

    assert [line for line in caught.value.lines if "(packages.E005)" in line]


def test_the_start_up_checks_leave_djangos_security_warnings_to_check_deploy(settings, caplog):
    settings.DEBUG = True  # security.W018 under --deploy, nothing without it

    startup.check_site()

    assert "security.W018" not in caplog.text


def test_a_check_message_reads_as_one_line_with_its_id_and_hint():
    from django.core import checks

    message = checks.Error(
        "STORAGES['packages'] uses S3 without a bucket_name.",
        hint="Set OPTIONS['bucket_name']\n(FORGE_S3_BUCKET in the forge site).",
        id="packages.E004",
    )

    assert startup.describe_check_message(message) == (
        "STORAGES['packages'] uses S3 without a bucket_name (packages.E004); "
        "set OPTIONS['bucket_name'] (FORGE_S3_BUCKET in the forge site)"
    )
