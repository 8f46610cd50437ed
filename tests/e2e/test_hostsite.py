"""The proof that the apps install into a Django site that is not forge, from their wheel.

`python -m build` makes the wheel and sdist; a fresh virtual environment gets the wheel
(and gunicorn) and nothing of the source tree; tests/hostsite, a small project with its
own email-login user model and its own access adapter, migrates and is served by
gunicorn. Two sites are served from it:
- the full one: the wheel with its `api` extra, the pages and the REST API under
  /registry/; skopeo pushes and pulls with one of that site's users, podman signs in;
- the protocol alone (`HOSTSITE_APPS=protocol`): the wheel without extras, so no Django
  REST framework, drf-spectacular or boto3 in its environment, and only `packages_core`
  and `registry` installed; skopeo and podman push and pull.
With DATABASE_URL pointing at PostgreSQL the sites run on fresh PostgreSQL databases,
otherwise on SQLite.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import (
    REPO_ROOT,
    STARTUP_TIMEOUT,
    Tool,
    answers_http,
    describe,
    free_port,
    fresh_postgres_database,
    isolated_client_env,
    log_tail,
    require_tool,
    stop_server,
)
from .layouts import make_image, read_tagged

HOSTSITE = REPO_ROOT / "tests" / "hostsite"
EMAIL, PASSWORD = "alice@example.com", "alice-host-pw"
BUILD_TIMEOUT = 600


def run(argv, *, cwd=REPO_ROOT, env=None, timeout=BUILD_TIMEOUT) -> str:
    result = subprocess.run(
        [str(arg) for arg in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"command failed\n{describe(result)}")
    return result.stdout


# What a build of the checkout must not see or write into: setuptools writes its
# egg-info beside the sources, and the suite leaves nothing in the checkout.
NOT_SOURCES = (
    ".git",
    ".venv",
    "data",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
)


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The wheel and sdist `python -m build` makes of (a copy of) the repository."""
    sources = tmp_path_factory.mktemp("sources") / "repository"
    shutil.copytree(REPO_ROOT, sources, ignore=shutil.ignore_patterns(*NOT_SOURCES), symlinks=True)
    outdir = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", outdir, sources], cwd=sources)
    return outdir


@pytest.fixture(scope="module")
def wheel(dist) -> Path:
    (found,) = dist.glob("django_forge_registry-*-py3-none-any.whl")
    return found


def make_venv(tmp_path_factory, requirement: str) -> Path:
    """A new virtual environment holding `requirement` (the wheel, maybe with extras),
    gunicorn and, for PostgreSQL, psycopg.
    """
    venv = tmp_path_factory.mktemp("hostsite-venv")
    run([sys.executable, "-m", "venv", "--without-pip", "--clear", venv])
    python = venv / "bin" / "python"
    # This venv's pip installs into the new one: no pip (or ensurepip) needed there.
    run([sys.executable, "-m", "pip", "--python", python, "install", "-q", requirement, "gunicorn"])
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "psycopg[binary]"])
    return venv


@pytest.fixture(scope="module")
def host_venv(wheel, tmp_path_factory) -> Path:
    """The full site's environment: the wheel with the REST API's extra."""
    return make_venv(tmp_path_factory, f"{wheel}[web,api]")


@pytest.fixture(scope="module")
def protocol_venv(wheel, tmp_path_factory) -> Path:
    """The protocol-only site's environment: the wheel and nothing it may leave out."""
    return make_venv(tmp_path_factory, str(wheel))


@contextlib.contextmanager
def database_env():
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield {}
        return
    with fresh_postgres_database(url) as fresh:
        parts = urlsplit(fresh)
        yield {
            "HOSTSITE_POSTGRES_DB": parts.path.lstrip("/"),
            "HOSTSITE_POSTGRES_USER": parts.username or "postgres",
            "HOSTSITE_POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "HOSTSITE_POSTGRES_PORT": str(parts.port or 5432),
        }


@contextlib.contextmanager
def serve(venv: Path, tmp_path_factory, **site_env: str):
    """tests/hostsite migrated with the apps of `venv`, seeded with a user and served by
    gunicorn: its base URL, a `manage` function and its Python.
    """
    data_dir = tmp_path_factory.mktemp("hostsite-data")
    port = free_port()
    with database_env() as db_env:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "FORGE_", "HOSTSITE_")) and key != "PYTHONPATH"
        }
        env.update(db_env)
        env.update(site_env)
        env.update(
            HOSTSITE_DATA_DIR=str(data_dir),
            HOSTSITE_EXTERNAL_URL=f"http://127.0.0.1:{port}",
            PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        )
        python = venv / "bin" / "python"

        def manage(*args: str) -> str:
            return run([python, "manage.py", *args], cwd=HOSTSITE, env=env)

        manage("migrate", "--no-input")
        manage("createuser", EMAIL, "--password", PASSWORD)
        log_path = data_dir / "gunicorn.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [
                    venv / "bin" / "gunicorn",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                    "--timeout",
                    "300",
                    "hostsite.wsgi:application",
                ],
                cwd=HOSTSITE,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while not answers_http("127.0.0.1", port):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the host site did not start\n{log_tail(log_path)}")
                time.sleep(0.2)
            yield {"url": f"http://127.0.0.1:{port}", "manage": manage, "python": python}
        finally:
            stop_server(process)


@pytest.fixture(scope="module")
def host_site(host_venv, tmp_path_factory):
    """The full host site: protocol, pages and REST API."""
    with serve(host_venv, tmp_path_factory) as site:
        yield site


@pytest.fixture(scope="module")
def protocol_site(protocol_venv, tmp_path_factory):
    """The host site with the protocol alone."""
    with serve(protocol_venv, tmp_path_factory, HOSTSITE_APPS="protocol") as site:
        yield site


def skopeo_round_trip(site: dict, tmp_path: Path, image: str) -> None:
    """skopeo pushes a new image to `site` as the site's user, pulls it back, compares."""
    skopeo = require_tool("skopeo")
    host = urlsplit(site["url"]).netloc
    tool = Tool([skopeo, "--insecure-policy"], isolated_client_env(tmp_path / "skopeo", host))
    source, pulled = tmp_path / "source", tmp_path / "pulled"
    made = make_image(source, "1.0", layers=[{"app/hello.txt": f"hello, {image}\n".encode()}])
    creds = f"{EMAIL}:{PASSWORD}"

    remote = f"docker://{host}/alice/{image}:1.0"
    tool("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{source}:1.0", remote)
    tool("copy", "--src-tls-verify=false", "--src-creds", creds, remote, f"oci:{pulled}:1.0")

    assert read_tagged(pulled, "1.0")["digest"] == made.manifest.digest


def podman_tool(site: dict, tmp_path: Path) -> tuple[Tool, Path]:
    """podman on a throwaway store, for `site`; and its runroot, for the caller to remove."""
    podman = require_tool("podman")
    host = urlsplit(site["url"]).netloc
    env = isolated_client_env(tmp_path / "podman", host)
    # podman refuses a runroot path longer than 50 characters.
    runroot = Path(tempfile.mkdtemp(prefix="hostsite-"))
    argv = [podman, "--root", tmp_path / "storage", "--runroot", runroot, "--storage-driver", "vfs"]
    return Tool(argv, env), runroot


def get(url: str, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_wheel_holds_the_two_apps_and_not_the_site(wheel, dist):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.endswith(".dist-info/RECORD")}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"registry", "packages_core"}
    for expected in (
        "packages_core/migrations/0001_initial.py",
        "registry/migrations/0001_initial.py",
        "packages_core/management/commands/cleanup_packages.py",
        "registry/web/templates/registry/base.html",
        "registry/web/templates/registry/web/owner_packages.html",
        "registry/web/templatetags/registry_web.py",
        "packages_core/api/apps.py",
    ):
        assert expected in names
    assert not [name for name in names if name.startswith(("forge/", "tests/"))]
    assert list(dist.glob("django_forge_registry-*.tar.gz"))


def test_the_site_runs_on_the_installed_wheel_not_the_source_tree(host_site, host_venv):
    where = run(
        [host_site["python"], "-c", "import registry, packages_core; print(registry.__file__)"],
        cwd=HOSTSITE,
    )
    assert Path(where.strip()).is_relative_to(host_venv)
    # The apps' system checks find nothing wrong with the way the site installed them
    # (the registry at the root, the storage alias, SQLite in WAL mode).
    assert "no issues" in host_site["manage"]("check")


def test_skopeo_pushes_and_pulls_as_a_user_of_the_host_site(host_site, tmp_path):
    skopeo_round_trip(host_site, tmp_path, "demo")

    # The owner is named by the host's adapter, from the email's local part; the pages
    # and the API answer under the host's prefix.
    status, body = get(host_site["url"], "/registry/alice/-/packages")
    assert status == 200
    assert b"demo" in body
    assert b"Example Corp registry" in body
    status, body = get(host_site["url"], "/registry/api/v1/packages/alice")
    assert status == 200
    assert [package["name"] for package in json.loads(body)["results"]] == ["demo"]


def test_podman_logs_in_as_a_user_of_the_host_site(host_site, tmp_path):
    tool, runroot = podman_tool(host_site, tmp_path)
    host = urlsplit(host_site["url"]).netloc

    result = tool("login", "--tls-verify=false", "-u", EMAIL, "-p", PASSWORD, host)
    assert "Login Succeeded" in result.stdout
    refused = tool("login", "--tls-verify=false", "-u", EMAIL, "-p", "wrong", host, check=False)
    assert refused.returncode != 0
    shutil.rmtree(runroot, ignore_errors=True)


def test_the_protocol_alone_installs_without_the_extras(protocol_site, protocol_venv):
    # The extras are missing from the environment, not merely unused.
    missing = run(
        [
            protocol_site["python"],
            "-c",
            "import importlib.util as u; print([m for m in "
            "('rest_framework', 'rest_framework_simplejwt', 'drf_spectacular', 'boto3', "
            "'storages') if u.find_spec(m) is None])",
        ],
        cwd=HOSTSITE,
    )
    assert missing.strip() == str(
        ["rest_framework", "rest_framework_simplejwt", "drf_spectacular", "boto3", "storages"]
    )
    assert "no issues" in protocol_site["manage"]("check")
    # Neither the pages nor the API are mounted.
    assert get(protocol_site["url"], "/registry/alice/-/packages")[0] == 404
    assert get(protocol_site["url"], "/registry/api/v1/packages/alice")[0] == 404


def test_skopeo_and_podman_push_and_pull_through_the_protocol_alone(protocol_site, tmp_path):
    skopeo_round_trip(protocol_site, tmp_path, "plain")
    tool, runroot = podman_tool(protocol_site, tmp_path)
    host = urlsplit(protocol_site["url"]).netloc
    try:
        tool("login", "--tls-verify=false", "-u", EMAIL, "-p", PASSWORD, host)
        tool("pull", "--tls-verify=false", f"{host}/alice/plain:1.0")
        tool("tag", f"{host}/alice/plain:1.0", f"{host}/alice/plain:copy")
        digest_file = tmp_path / "pushed-digest"
        tool(
            "push",
            "--tls-verify=false",
            "--digestfile",
            digest_file,
            f"{host}/alice/plain:copy",
        )
        tool("rmi", "--all", "--force")
        tool("pull", "--tls-verify=false", f"{host}/alice/plain:copy")
        pulled = json.loads(tool("image", "inspect", f"{host}/alice/plain:copy").stdout)[0]
        assert pulled["Digest"] == digest_file.read_text().strip()
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


def test_the_api_schema_builds_without_the_host_configuring_drf(host_site):
    # The host site sets no REST_FRAMEWORK and installs no drf_spectacular app.
    status, body = get(host_site["url"], "/registry/api/schema/?format=json")

    assert status == 200, body[:2000]
    paths = json.loads(body)["paths"]
    assert "/registry/api/v1/packages/{owner}" in paths
    status, _ = get(host_site["url"], "/registry/api/docs/")
    assert status == 404  # the Swagger UI needs drf_spectacular's templates


def test_the_protocol_takes_the_short_middleware_stack_of_the_host_site(host_site):
    # hostsite/wsgi.py wraps its application in registry.wsgi.protocol_routed.
    parts = urlsplit(host_site["url"])
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", "/v2/")
        protocol = connection.getresponse()
        protocol.read()
        connection.request("GET", "/registry/alice/-/packages")
        page = connection.getresponse()
        page.read()
    finally:
        connection.close()

    assert protocol.status == 401
    assert protocol.getheader("Docker-Distribution-Api-Version") == "registry/2.0"
    assert protocol.getheader("X-Frame-Options") is None  # the host's clickjacking middleware
    assert protocol.getheader("X-Content-Type-Options") == "nosniff"  # security still applies
    assert page.status == 200
    assert page.getheader("X-Frame-Options") == "DENY"
