"""Start-up of manage.py and gunicorn: a misconfigured site stops with one line, not a traceback.

`misconfiguration_exits()` turns what a wrong setting raises (a `ConfigurationError`
from forge/environment.py, a database that cannot be connected to, failed system
checks) into `forge: <what is wrong, which variable, how to fix it>` on stderr and
exit status 2. gunicorn's master also checks, before it forks, what would otherwise
only fail in the workers or on the first request: the port, the checks, the database.
A manage.py command that finds the database without its tables says so the same way
(`unmigrated_database_exits()`): it is most often the wrong database, one the server
does not use.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import sys
import traceback
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from django.db.utils import DatabaseError, OperationalError

from forge.environment import DATA_DIR_FIX, ConfigurationError, redacted_url

logger = logging.getLogger(__name__)

EXIT_MISCONFIGURED = 2
# The start-up probe's wait for PostgreSQL; without it an address that drops packets
# holds the server for the kernel's TCP timeout (minutes) before saying anything.
DATABASE_PROBE_TIMEOUT = 10
# Failures that name a fault in the credentials rather than in reaching the server.
CREDENTIAL_FAILURES = (
    "password authentication failed",
    "no password supplied",
    'role "',
    "pg_hba.conf",
    "permission denied",
)
# PostgreSQL's SQLSTATE for "relation ... does not exist" (SQLite only has the message).
UNDEFINED_TABLE = "42P01"
MIGRATE = "run `make run` once or `manage.py migrate`"


class SystemChecksFailed(Exception):
    """Django's system checks found errors; `lines` says each in one line."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def exit_misconfigured(lines: Iterable[str]) -> NoReturn:
    for line in lines:
        print(f"forge: {line}", file=sys.stderr, flush=True)
    sys.exit(EXIT_MISCONFIGURED)


@contextlib.contextmanager
def misconfiguration_exits(env: Mapping[str, str] = os.environ) -> Iterator[None]:
    """Inside, a misconfiguration ends the process: one line on stderr, exit status 2.

    Any other error, including a database error after the connection was made, goes
    on as it would: those are bugs or outages, and their traceback is wanted.
    """
    try:
        yield
    except ConfigurationError as error:
        exit_misconfigured([str(error)])
    except SystemChecksFailed as error:
        exit_misconfigured(error.lines)
    except OperationalError as error:
        if not raised_while_connecting(error):
            raise
        exit_misconfigured([str(database_unreachable(error, env))])


def run_command(argv: list[str]) -> None:
    """Django's command line for manage.py; `--traceback` shows a misconfiguration whole."""
    from django.core.management import execute_from_command_line

    if "--traceback" in argv:
        execute_from_command_line(argv)
        return
    # migrate makes the tables: a missing one there is its own failure, not advice to run it.
    tables = contextlib.nullcontext() if argv[1:2] == ["migrate"] else unmigrated_database_exits()
    with misconfiguration_exits(), tables:
        # The dev server finds a database it cannot reach in a thread, prints the
        # traceback and serves on; so it is looked at before the server starts.
        if argv[1:2] == ["runserver"]:
            check_database()
        execute_from_command_line(argv)


@contextlib.contextmanager
def unmigrated_database_exits(env: Mapping[str, str] = os.environ) -> Iterator[None]:
    """Inside, a query for a table the database lacks, in a database whose migrations are
    not all applied, becomes a ConfigurationError naming the database and the fix.

    That is a command run against a database `make run` never migrated: most often not
    the server's at all (another FORGE_DATA_DIR or DATABASE_URL). A SQLite file the
    command itself brought into being by connecting is removed again, so the mistake
    leaves nothing behind. With every migration applied the error is a bug and goes on.
    """
    new_file = _sqlite_file_to_be_made()
    try:
        yield
    except DatabaseError as error:
        if not is_missing_table(error):
            raise
        try:
            problem = unmigrated_database(env, new_file)
        except DatabaseError:
            problem = None
        if problem is None:
            raise
        raise problem from None


def is_missing_table(error: DatabaseError) -> bool:
    """Whether a query failed for naming a table the database does not have."""
    cause = error.__cause__
    code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    return code == UNDEFINED_TABLE or str(error).startswith("no such table")


def _sqlite_file_to_be_made() -> Path | None:
    """The default database's SQLite file, if it is one and does not exist yet."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        config = settings.DATABASES["default"]
    except ImproperlyConfigured:
        # Django's command line reads the settings again and reports it.
        return None
    name = str(config.get("NAME") or "")
    if "sqlite" not in config.get("ENGINE", "") or name.startswith("file:") or ":memory:" in name:
        return None
    path = Path(name)
    return None if path.exists() else path


def unmigrated_database(env: Mapping[str, str], new_file: Path | None) -> ConfigurationError | None:
    """What is wrong with the default database if some of its migrations are not applied;
    None if they all are. `new_file`: its SQLite file, if this process made it.
    """
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    connection = connections["default"]
    executor = MigrationExecutor(connection)
    missing = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if not missing:
        return None
    tables = connection.introspection.table_names()
    url = env.get("DATABASE_URL", "").strip()
    variable = "DATABASE_URL" if url else "FORGE_DATA_DIR"
    where = f"at {redacted_url(url)}" if url else str(connection.settings_dict["NAME"])
    other = (
        "or set DATABASE_URL to the database the server uses"
        if url
        else "or set FORGE_DATA_DIR to the data dir the server uses"
    )
    connections.close_all()
    if tables:
        migration = missing[0][0]
        return ConfigurationError(
            variable,
            f"the database {where} ({variable}) lacks {len(missing)} migration(s), "
            f"the first {migration.app_label}.{migration.name}",
            "run `manage.py migrate` (`make run` does, before it serves)",
        )
    if new_file is not None:
        # Connecting made an empty file: take it away again, with SQLite's companions.
        for path in (new_file, *(Path(f"{new_file}{tail}") for tail in ("-wal", "-shm"))):
            path.unlink(missing_ok=True)
        return ConfigurationError(
            variable,
            f"there is no database {where} ({variable})",
            f"{MIGRATE} to make it, {other}",
        )
    return ConfigurationError(
        variable,
        f"the database {where} ({variable}) has no tables",
        f"{MIGRATE} to make them, {other}",
    )


def raised_while_connecting(error: BaseException) -> bool:
    """Whether a database error came from opening a connection (every backend opens
    it in `get_new_connection`), rather than from a query on one that works.
    """
    return any(
        frame.f_code.co_name == "get_new_connection"
        for frame, _ in traceback.walk_tb(error.__traceback__)
    )


def connection_failure_reason(message: str) -> str:
    """The driver's reason in a few words, from its (possibly multi-line) message.

    psycopg says `connection failed: connection to server at "h", port 5432 failed:
    FATAL:  database "x" does not exist`, one line per address tried, then advice.
    """
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    failed = [line for line in lines if "failed: " in line]
    reason = failed[-1].rsplit("failed: ", 1)[1] if failed else (lines[0] if lines else "")
    reason = reason.removeprefix("FATAL:")
    return " ".join(reason.split()) or "no reason given"


def database_unreachable(error: OperationalError, env: Mapping[str, str]) -> ConfigurationError:
    """The ConfigurationError that says why the database could not be connected to."""
    from django.conf import settings

    reason = connection_failure_reason(str(error))
    url = env.get("DATABASE_URL", "").strip()
    if not url:
        name = settings.DATABASES["default"].get("NAME")
        return ConfigurationError(
            "FORGE_DATA_DIR",
            f"cannot open the SQLite database {name} (FORGE_DATA_DIR): {reason}",
            DATA_DIR_FIX,
        )
    if urlsplit(url).scheme in ("sqlite", "spatialite"):
        fix = "make the file's directory exist and be writable by this user, or fix DATABASE_URL"
    elif "does not exist" in reason and reason.startswith("database"):
        fix = "create the database, or fix its name in DATABASE_URL"
    elif any(failure in reason for failure in CREDENTIAL_FAILURES):
        fix = "fix the user or password in DATABASE_URL, or let that user in on the server"
    else:
        fix = "start the database server, or fix the host and port in DATABASE_URL"
    return ConfigurationError(
        "DATABASE_URL",
        f"cannot reach the database at {redacted_url(url)} (DATABASE_URL): {reason}",
        fix,
    )


def check_database(alias: str = "default") -> None:
    """Open a connection to the database and close it again.

    A connection of its own, not the shared one: this runs in gunicorn's master,
    whose connections the forked workers must not inherit. It needs the settings,
    not the apps (`django.setup()`).
    """
    from django.db import connections
    from django.db.utils import load_backend

    config = dict(connections.settings[alias])
    backend = load_backend(config["ENGINE"])
    if backend.DatabaseWrapper.vendor == "postgresql":
        config["OPTIONS"] = {"connect_timeout": DATABASE_PROBE_TIMEOUT, **config["OPTIONS"]}
    probe = backend.DatabaseWrapper(config, alias)
    try:
        probe.ensure_connection()
    finally:
        probe.close()


def check_site() -> None:
    """Django's system checks (those `manage.py check` runs) and the deployment checks
    that look at services over the network (an S3 bucket), errors one line each.

    Warnings are logged and do not stop the server. The other deployment checks
    (Django's security warnings) are left to `manage.py check --deploy`.
    """
    from django.core import checks

    from packages_core.checks import NETWORK

    messages = [
        *checks.run_checks(),
        *checks.run_checks(tags=[NETWORK], include_deployment_checks=True),
    ]
    errors = []
    for message in messages:
        if message.is_silenced():
            continue
        if message.is_serious():
            errors.append(describe_check_message(message))
        else:
            logger.warning("%s", describe_check_message(message))
    if errors:
        raise SystemChecksFailed(errors)


def describe_check_message(message) -> str:
    """A system check's message, id and hint in one line, as a ConfigurationError reads."""
    text = _clause(message.msg)
    if message.obj is not None:
        text = f"{message.obj}: {text}"
    line = f"{text} ({message.id})"
    if message.hint:
        hint = _clause(message.hint)
        if hint[:1].isupper() and hint[1:2].islower():
            hint = hint[0].lower() + hint[1:]
        line += f"; {hint}"
    return line


def _clause(text) -> str:
    return " ".join(str(text).split()).rstrip(".")


def inherits_sockets(env: Mapping[str, str]) -> bool:
    """Whether gunicorn gets its listening sockets bound already: from systemd, or
    from the old master during an upgrade (USR2), which still holds the port.
    """
    return bool(env.get("LISTEN_FDS") or env.get("GUNICORN_FD"))


def check_listen_addresses(addresses: Iterable) -> None:
    """Every TCP address gunicorn is to listen on can be bound now.

    gunicorn finds a taken port itself, but only after five tries a second apart,
    logging each; this says it once, at once. Unix socket paths are gunicorn's own.
    """
    for address in addresses:
        if not isinstance(address, tuple):
            continue
        host, port = address[0], address[1]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As gunicorn binds: a port left in TIME_WAIT by a previous run is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise cannot_listen(host, port, exc) from None


def cannot_listen(host: str, port: int, exc: OSError) -> ConfigurationError:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    problem = f"cannot listen on {where} (HOST, PORT): {exc.strerror or exc}"
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return ConfigurationError(
            "HOST", problem, "set HOST to an address of this machine, such as 127.0.0.1"
        )
    if exc.errno == errno.EACCES:
        return ConfigurationError(
            "PORT", problem, "ports below 1024 need privileges: set PORT to 1024 or above"
        )
    return ConfigurationError(
        "PORT", problem, "stop what is listening there, or set PORT to a free port"
    )
