"""End-to-end harness: a live forge server (or an external registry) and real clients.

The session fixture `live_registry` migrates a fresh database (SQLite in a temporary
directory, or a new PostgreSQL database when DATABASE_URL points at PostgreSQL), seeds
users with the management commands and serves the site with gunicorn on a free port.
With E2E_REGISTRY_URL set, the tests drive that registry instead (no seeding, no
credentials): this is how the suite is checked against a reference registry.

`start_forge(extra_env, *, share_with=None)` starts more servers for one test module:
a site of its own (fresh database, seeded), or another gunicorn on the database and
data dir of a server started before, with some variables changed.

Clients (skopeo, podman, oras-py, docker and its engine dockerd; chromium, chromedriver
and selenium for the browser tests) are found with `require_tool`: a missing one skips
its tests on a developer's machine and fails them in CI (CI=true).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.ci import unavailable

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parents[1]
VENV_BIN = Path(sys.executable).parent

STARTUP_TIMEOUT = 30
COMMAND_TIMEOUT = 300
LOG_TAIL_LINES = 60

# Inherited variables that would make the child server differ from the one the tests
# expect (another database, data dir, secret or sign-in rule); the harness sets its own.
CHILD_ENV_DROPPED = (
    "DATABASE_URL",
    "FORGE_ADMIN_PASSWORD",
    "FORGE_DATA_DIR",
    "FORGE_SECRET_KEY",
    "FORGE_EXTERNAL_URL",
    "FORGE_REQUIRE_SIGNIN_VIEW",
    "HOST",
    "PORT",
)

INSTALL_HINTS = {
    "skopeo": "apt-get install -y skopeo",
    "podman": "apt-get install -y podman",
    "buildah": "apt-get install -y buildah",
    "umoci": "apt-get install -y umoci",
    "nginx": "apt-get install -y nginx",
    "docker": "apt-get install -y docker.io",
    "dockerd": "apt-get install -y docker.io",
    "docker-registry": "apt-get install -y docker-registry",
    "oras": ".venv/bin/pip install -r requirements-dev.txt (oras-py, 'oras>=0.2,<0.3')",
    "chromium": "apt-get install -y chromium chromium-driver",
    "chromedriver": "apt-get install -y chromium-driver",
    "selenium": ".venv/bin/pip install -r requirements-dev.txt (selenium)",
}
PYTHON_MODULE_TOOLS = {"oras": "oras.client", "selenium": "selenium.webdriver"}

SERVER_LOG_KEY = pytest.StashKey[Path]()
# The logs of servers start_forge started and has not stopped yet, by name.
EXTRA_SERVER_LOGS_KEY = pytest.StashKey[dict]()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if E2E_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing e2e test shows the end of the server's log next to its own output."""
    outcome = yield
    report = outcome.get_result()
    log_path = item.config.stash.get(SERVER_LOG_KEY, None)
    if report.failed and log_path is not None and log_path.exists():
        report.sections.append(("forge server log (tail)", log_tail(log_path)))
    if report.failed:
        for name, path in item.config.stash.get(EXTRA_SERVER_LOGS_KEY, {}).items():
            if path.exists():
                report.sections.append((f"forge server {name} log (tail)", log_tail(path)))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    log_path = config.stash.get(SERVER_LOG_KEY, None)
    if log_path is not None and terminalreporter.stats.get("failed"):
        terminalreporter.write_sep("-", f"forge server log: {log_path}")


# --- tools -------------------------------------------------------------------------


def require_tool(name: str) -> str:
    """The path of client `name` (or its module, for oras-py); skip without it, fail in CI."""
    module = PYTHON_MODULE_TOOLS.get(name)
    if module is not None:
        found = importlib.util.find_spec(module.split(".")[0]) is not None
        location = module
    else:
        location = shutil.which(name)
        found = location is not None
    if found:
        return location
    hint = INSTALL_HINTS.get(name, f"install {name}")
    unavailable(
        f"end-to-end client {name!r} is not installed; install it with: {hint}",
        "a missing client",
    )


def describe(result: subprocess.CompletedProcess) -> str:
    def text(data) -> str:
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        return (data or "").strip()[-6000:]

    command = " ".join(str(arg) for arg in result.args)
    return (
        f"$ {command}\nexit code {result.returncode}\n"
        f"--- stdout ---\n{text(result.stdout)}\n--- stderr ---\n{text(result.stderr)}"
    )


@dataclass
class Tool:
    """A command-line client with fixed leading arguments and environment."""

    argv: list[str]
    env: dict[str, str]
    timeout: float = COMMAND_TIMEOUT

    def __call__(
        self, *args, check: bool = True, timeout: float | None = None, binary: bool = False
    ) -> subprocess.CompletedProcess:
        """Run; with check, a non-zero exit fails the test showing stdout and stderr."""
        argv = [*self.argv, *(str(arg) for arg in args)]
        try:
            result = subprocess.run(
                argv,
                env=self.env,
                capture_output=True,
                text=not binary,
                timeout=timeout or self.timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            partial = subprocess.CompletedProcess(argv, -1, exc.stdout, exc.stderr)
            pytest.fail(f"timed out after {exc.timeout} s\n{describe(partial)}")
        if check and result.returncode != 0:
            pytest.fail(f"command failed\n{describe(result)}")
        return result


def isolated_client_env(directory: Path, registry_host: str) -> dict[str, str]:
    """Environment for containers/image clients that reads no credentials or registry
    settings of the machine's, and treats the registry as plain HTTP.
    """
    directory.mkdir(parents=True, exist_ok=True)
    auth_file = directory / "auth.json"
    auth_file.write_text('{"auths": {}}\n')
    registries_conf = directory / "registries.conf"
    registries_conf.write_text(
        f'unqualified-search-registries = []\n\n[[registry]]\nlocation = "{registry_host}"\n'
        "insecure = true\n"
    )
    env = dict(os.environ)
    env.update(
        {
            "REGISTRY_AUTH_FILE": str(auth_file),
            "CONTAINERS_REGISTRIES_CONF": str(registries_conf),
            "DOCKER_CONFIG": str(directory / "docker"),
            "TMPDIR": str(directory),
        }
    )
    return env


# --- the registry ------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    @property
    def joined(self) -> str:
        """user:secret, as skopeo's --creds wants it."""
        return f"{self.username}:{self.password}"

    @property
    def basic_header(self) -> str:
        token = base64.b64encode(self.joined.encode()).decode()
        return f"Basic {token}"


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


@dataclass
class LiveRegistry:
    """Where the registry under test answers, and who may sign in to it."""

    url: str
    external: bool = False
    users: dict[str, Credentials] = field(default_factory=dict)
    data_dir: Path | None = None
    log_path: Path | None = None
    # The environment the server runs with: management commands run with it reach
    # the server's database and data dir.
    server_env: dict[str, str] | None = field(default=None, repr=False)
    # The gunicorn master, for servers the harness started.
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    def creds(self, name: str) -> Credentials | None:
        """A seeded user's credentials; None against an external registry (no auth)."""
        if self.external:
            return None
        return self.users[name]

    def manage(self, *args: str) -> str:
        """Run a manage.py command against the live server's database; its stdout.

        Skips the test against an external registry, which has no database of ours.
        """
        if self.external or self.server_env is None:
            pytest.skip("E2E_REGISTRY_URL is set: management commands need our own server")
        return manage(list(args), self.server_env, failure="a management command failed")

    @property
    def alice(self) -> Credentials | None:
        return self.creds("alice")

    @property
    def bob(self) -> Credentials | None:
        return self.creds("bob")

    def request(
        self,
        method: str,
        path: str,
        *,
        creds: Credentials | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        """One HTTP request on a new connection; Basic auth when `creds` are given."""
        parts = urlsplit(self.url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        all_headers = dict(headers or {})
        if creds is not None:
            all_headers["Authorization"] = creds.basic_header
        try:
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse()
            return Response(response.status, response.headers, response.read())
        finally:
            connection.close()


SEED_COMMANDS = [
    ["createuser", "alice", "--email", "alice@example.com", "--password", "alice-pw"],
    ["createuser", "bob", "--password", "bob-pw"],
    ["createorg", "acme", "--owner", "alice"],
    ["addmember", "acme", "bob", "--role", "read"],
]
SEED_USERS = {
    "alice": Credentials("alice", "alice-pw"),
    "bob": Credentials("bob", "bob-pw"),
}


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers_http(host: str, port: int) -> bool:
    """True once GET /v2/ gets any HTTP response at all."""
    connection = http.client.HTTPConnection(host, port, timeout=2)
    try:
        connection.request("GET", "/v2/")
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def manage(
    args: list[str], env: dict[str, str], *, failure: str = "setting up the e2e server failed"
) -> str:
    """Run one manage.py command in the repo root; its stdout, or fail showing its output."""
    argv = [sys.executable, "manage.py", *args]
    result = subprocess.run(
        argv,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"{failure}\n{describe(result)}")
    return result.stdout


@contextlib.contextmanager
def fresh_postgres_database(url: str):
    """A new, empty database next to the one `url` names; dropped afterwards."""
    import psycopg  # a runtime requirement; only needed on PostgreSQL
    from psycopg import sql

    name = f"forge_e2e_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(url, dbname="postgres", autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        pytest.fail(f"cannot create the e2e database {name} next to DATABASE_URL={url}: {exc}")
    parts = urlsplit(url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(url, dbname="postgres", autocommit=True) as connection:
            drop = "DROP DATABASE IF EXISTS {}"
            if connection.info.server_version >= 130000:
                drop += " WITH (FORCE)"
            connection.execute(sql.SQL(drop).format(sql.Identifier(name)))


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM gunicorn's master (it stops its workers), then kill its group if it lingers."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


class ServerDidNotStart(pytest.fail.Exception):
    """gunicorn exited, or did not answer, before serving GET /v2/; fails the test
    with the end of its log unless a test expects it (pytest.raises).
    """

    def __init__(self, message: str, log: str):
        super().__init__(message)
        self.log = log


def start_server(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen, int]:
    """gunicorn on a free port, answering /v2/; a port taken meanwhile is retried.

    Raises ServerDidNotStart (a test failure showing the log) when it does not answer.
    """
    gunicorn = VENV_BIN / "gunicorn"
    if not gunicorn.exists():
        pytest.fail(f"gunicorn is not installed next to {sys.executable}")
    for _attempt in range(3):
        port = free_port()
        child_env = {**env, "HOST": "127.0.0.1", "PORT": str(port)}
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [str(gunicorn), "-c", "gunicorn.conf.py", "forge.wsgi:application"],
                cwd=REPO_ROOT,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if answers_http("127.0.0.1", port):
                return process, port
            time.sleep(0.2)
        stop_server(process)
        if "Address already in use" not in log_tail(log_path):
            break
    if process.returncode not in (None, -signal.SIGTERM):
        what = f"gunicorn exited with code {process.returncode} before answering GET /v2/"
    else:
        what = f"gunicorn did not answer GET /v2/ within {STARTUP_TIMEOUT} s"
    tail = log_tail(log_path)
    raise ServerDidNotStart(f"{what}; log {log_path}:\n{tail}", tail)


def child_env(data_dir: Path) -> dict[str, str]:
    """The environment of a server of our own on `data_dir`, without inherited settings
    that would make it differ from what the tests expect.
    """
    env = {key: value for key, value in os.environ.items() if key not in CHILD_ENV_DROPPED}
    env.update({"FORGE_DATA_DIR": str(data_dir), "FORGE_WORKERS": "2"})
    return env


def prepare_site(env: dict[str, str], stack: contextlib.ExitStack) -> dict[str, str]:
    """Give a new site its database (a fresh one on PostgreSQL), migrate and seed it,
    collect its static files; returns the environment that reaches it.
    """
    env = dict(env)
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith("postgres"):
        env["DATABASE_URL"] = stack.enter_context(fresh_postgres_database(database_url))
    manage(["migrate", "--noinput"], env)
    # As `make run` does: WhiteNoise serves what is collected when the server starts,
    # so the admin's and the pages' CSS is there for the browser tests' screenshots.
    manage(["collectstatic", "--noinput", "-v0"], env)
    for command in SEED_COMMANDS:
        manage(command, env)
    return env


@pytest.fixture(scope="session")
def live_registry(request, tmp_path_factory):
    """The registry under test: a fresh forge server, or E2E_REGISTRY_URL."""
    external_url = os.environ.get("E2E_REGISTRY_URL", "").strip().rstrip("/")
    if external_url:
        registry = LiveRegistry(url=external_url, external=True)
        parts = urlsplit(external_url)
        if not answers_http(parts.hostname, parts.port or 80):
            pytest.fail(f"E2E_REGISTRY_URL={external_url} does not answer GET /v2/")
        yield registry
        return

    data_dir = tmp_path_factory.mktemp("forge-e2e")
    log_path = data_dir / "gunicorn.log"

    with contextlib.ExitStack() as stack:
        env = prepare_site(child_env(data_dir), stack)
        process, port = start_server(env, log_path)
        stack.callback(stop_server, process)
        request.config.stash[SERVER_LOG_KEY] = log_path
        yield LiveRegistry(
            url=f"http://127.0.0.1:{port}",
            users=dict(SEED_USERS),
            data_dir=data_dir,
            log_path=log_path,
            server_env=env,
            process=process,
        )


@pytest.fixture(scope="module")
def start_forge(request, tmp_path_factory):
    """Start more forge servers for this module: `start_forge(extra_env, *, share_with=None)`.

    Without `share_with`, a new site: its own data dir and database, migrated and
    seeded like `live_registry`'s, run with `extra_env` on top. With `share_with` (a
    LiveRegistry start_forge or live_registry returned), another gunicorn on that
    server's data dir, database and secret, with `extra_env` changing its environment.
    Returns a LiveRegistry; the servers stop when the module ends. A server that does
    not answer raises ServerDidNotStart with the end of its log.
    """
    if os.environ.get("E2E_REGISTRY_URL", "").strip():
        pytest.skip("E2E_REGISTRY_URL is set: these tests start servers of our own")
    logs = request.config.stash.setdefault(EXTRA_SERVER_LOGS_KEY, {})
    started: list[str] = []

    with contextlib.ExitStack() as stack:

        def start(
            extra_env: dict[str, str] | None = None,
            *,
            share_with: LiveRegistry | None = None,
            name: str | None = None,
        ) -> LiveRegistry:
            name = name or f"forge-{len(started) + 1}"
            if share_with is not None:
                if share_with.server_env is None or share_with.data_dir is None:
                    raise ValueError(f"{share_with.url} is not a server the harness started")
                data_dir = share_with.data_dir
                env = {**share_with.server_env, **(extra_env or {})}
            else:
                data_dir = tmp_path_factory.mktemp(name)
                env = prepare_site({**child_env(data_dir), **(extra_env or {})}, stack)
            log_path = data_dir / f"gunicorn-{name}.log"
            started.append(name)
            logs[name] = log_path
            process, port = start_server(env, log_path)
            stack.callback(stop_server, process)
            return LiveRegistry(
                url=f"http://127.0.0.1:{port}",
                users=dict(SEED_USERS),
                data_dir=data_dir,
                log_path=log_path,
                server_env=env,
                process=process,
            )

        try:
            yield start
        finally:
            for name in started:
                logs.pop(name, None)


# --- clients -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def skopeo(live_registry, tmp_path_factory) -> Tool:
    """skopeo with no machine credentials or policy: `skopeo("copy", ...)`."""
    path = require_tool("skopeo")
    env = isolated_client_env(tmp_path_factory.mktemp("skopeo"), live_registry.host)
    return Tool([path, "--insecure-policy"], env)


@pytest.fixture(scope="module")
def podman(live_registry, tmp_path_factory) -> Tool:
    """podman on a throwaway vfs store, with its own auth file and registries.conf."""
    directory = tmp_path_factory.mktemp("podman")
    return podman_tool(directory, live_registry.host)


def podman_tool(directory: Path, insecure_host: str) -> Tool:
    """podman on a vfs store under `directory`, reading nothing of the machine's
    configuration; `insecure_host` is plain HTTP to it.
    """
    argv = [
        require_tool("podman"),
        "--root",
        str(directory / "storage"),
        "--runroot",
        str(directory / "runroot"),
        "--storage-driver",
        "vfs",
    ]
    return Tool(argv, isolated_client_env(directory, insecure_host))


@pytest.fixture(scope="session")
def oras(live_registry):
    """The oras-py package (`oras.client`, `oras.oci`), or a skip/fail naming how to get it."""
    require_tool("oras")
    import oras.client
    import oras.oci

    return oras
