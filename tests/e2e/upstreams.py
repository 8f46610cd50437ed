"""Upstream registries for the mirror tests: CNCF Distribution, and one that lies."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .conftest import (
    Credentials,
    Tool,
    answers_http,
    free_port,
    isolated_client_env,
    log_tail,
    podman_tool,
    require_tool,
)
from .layouts import OCI_MANIFEST, ImageInfo, make_image, read_blob

DISTRIBUTION = "docker-registry"
STARTUP_TIMEOUT = 15
MIB = 1024 * 1024

# Any path under /v2/ that fetches a blob by digest; `blob_path` narrows it to a repository.
BLOB_PATH = r"/v2/.+/blobs/sha256:[0-9a-f]{64}"
MANIFEST_PATH = r"/v2/.+/manifests/[^/]+"

# The access log (Apache combined format, one line per request, written when the
# response is done) and logrus's "response completed" line, which says the same: either
# is enough, so a configuration that drops one still counts.
ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<uri>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) ')
LOGRUS_METHOD = re.compile(r"\bhttp\.request\.method=(?P<method>[A-Z]+)\b")
LOGRUS_URI = re.compile(r'\bhttp\.request\.uri=(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>\S+))')
LOGRUS_STATUS = re.compile(r"\bhttp\.response\.status=(?P<status>\d{3})\b")


@dataclass(frozen=True)
class Request:
    """One request an upstream logged."""

    method: str
    path: str  # without the query string
    status: int | None = None


def blob_path(repository: str, digest: str | None = None) -> str:
    """A regex for the blob URL of `repository` (any blob, or `digest`'s)."""
    tail = re.escape(digest) if digest else r"sha256:[0-9a-f]{64}"
    return rf"/v2/{re.escape(repository)}/blobs/{tail}"


def parse_requests(text: str) -> list[Request]:
    """The requests a Distribution log shows, from whichever of its two formats it has."""
    access, logrus = [], []
    for line in text.splitlines():
        if match := ACCESS_LINE.search(line):
            uri = match["uri"]
            access.append(Request(match["method"], uri.split("?", 1)[0], int(match["status"])))
            continue
        method = LOGRUS_METHOD.search(line)
        uri = LOGRUS_URI.search(line)
        if method and uri and "response completed" in line:
            path = uri["quoted"] if uri["quoted"] is not None else uri["bare"]
            path = path.replace('\\"', '"').split("?", 1)[0]
            status = LOGRUS_STATUS.search(line)
            logrus.append(
                Request(method["method"], path, int(status["status"]) if status else None)
            )
    # Each request is in both when the access log is on: count it once.
    return access or logrus


def count_matching(requests: list[Request], method: str, path_pattern: str) -> int:
    pattern = re.compile(path_pattern)
    return sum(
        1 for r in requests if r.method == method.upper() and pattern.fullmatch(r.path) is not None
    )


# --- htpasswd ----------------------------------------------------------------------


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash ($2b$), the only kind Distribution's htpasswd accepts.

    From the C library's crypt (libxcrypt, in every Debian system) rather than
    apache2-utils or a Python package, so the harness needs nothing more installed.
    """
    name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
    library = ctypes.CDLL(name)
    library.crypt_gensalt.restype = ctypes.c_char_p
    library.crypt_gensalt.argtypes = [
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_char_p,
        ctypes.c_int,
    ]
    library.crypt.restype = ctypes.c_char_p
    library.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    # Cost 5, the smallest bcrypt takes is 4: an upstream checks it on every request.
    salt = library.crypt_gensalt(b"$2b$", 5, None, 0)
    hashed = library.crypt(password.encode(), salt) if salt else None
    if not hashed or not hashed.startswith(b"$2b$"):
        raise RuntimeError(f"{name} cannot make bcrypt hashes")
    return hashed.decode()


# --- Distribution ------------------------------------------------------------------


@dataclass
class Distribution:
    """A `docker-registry serve` on loopback with its own config, storage and log."""

    directory: Path
    port: int
    credentials: Credentials | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "registry.log"

    @property
    def config_path(self) -> Path:
        return self.directory / "config.yml"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def write_config(self) -> None:
        config: dict = {
            "version": "0.1",
            # info logs every response; the access log is one line per request.
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.directory / "storage")},
                "delete": {"enabled": True},
            },
            "http": {"addr": self.host, "secret": secrets.token_hex(16)},
        }
        if self.credentials is not None:
            htpasswd = self.directory / "htpasswd"
            htpasswd.write_text(
                f"{self.credentials.username}:{bcrypt_hash(self.credentials.password)}\n"
            )
            config["auth"] = {"htpasswd": {"realm": "e2e-upstream", "path": str(htpasswd)}}
        # JSON is YAML: Distribution reads it as its config.
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")

    def start(self) -> None:
        """Serve (again, on the same port and storage); returns once /v2/ answers."""
        if self.running:
            return
        binary = shutil.which(DISTRIBUTION) or require_tool(DISTRIBUTION)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [binary, "serve", str(self.config_path)],
                # Nothing inherited: REGISTRY_* variables would override the config.
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not answers_http("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"docker-registry did not answer on {self.url}:\n{log_tail(self.log_path)}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop serving: from here on the port refuses connections."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def requests(self) -> list[Request]:
        """Every request logged so far, once the log has stopped growing."""
        settle(self.log_path)
        return parse_requests(self.log_path.read_text(errors="replace"))

    def count(self, method: str, path_pattern: str) -> int:
        """How many `method` requests had a path matching `path_pattern` (a regex)."""
        return count_matching(self.requests(), method, path_pattern)

    def blob_gets(self, repository: str | None = None, digest: str | None = None) -> int:
        pattern = blob_path(repository, digest) if repository else BLOB_PATH
        return self.count("GET", pattern)

    def push(
        self,
        skopeo: Tool,
        layout: Path,
        layout_tag: str,
        repository: str,
        tag: str,
        *,
        all_images: bool = False,
    ) -> str:
        """Copy `layout_tag` of an OCI layout to repository:tag here, digests unchanged;
        returns the docker:// reference.
        """
        reference = f"docker://{self.host}/{repository}:{tag}"
        creds = ["--dest-creds", self.credentials.joined] if self.credentials else []
        skopeo(
            "copy",
            *(["--all"] if all_images else []),
            "--preserve-digests",
            "--dest-tls-verify=false",
            *creds,
            f"oci:{layout}:{layout_tag}",
            reference,
        )
        return reference


def settle(path: Path, quiet: float = 0.3, limit: float = 5.0) -> None:
    """Wait until `path` has not grown for `quiet` seconds: a server logs a request
    just after its last byte went out, so a client may finish before the line is there.
    """
    deadline = time.monotonic() + limit
    size = -1
    while time.monotonic() < deadline:
        current = path.stat().st_size if path.exists() else 0
        if current == size:
            return
        size = current
        time.sleep(quiet)


@contextlib.contextmanager
def running_distribution(directory: Path, *, credentials: Credentials | None = None):
    """Distribution on a free loopback port with storage in `directory`; htpasswd
    Basic auth when `credentials` are given. Yields a Distribution, stopped afterwards.
    """
    require_tool(DISTRIBUTION)
    directory.mkdir(parents=True, exist_ok=True)
    registry = Distribution(directory, free_port(), credentials)
    registry.write_config()
    try:
        registry.start()
        yield registry
    finally:
        registry.stop()


# --- an upstream that lies ---------------------------------------------------------


@dataclass
class LyingUpstream:
    """A registry that serves one image whose layer bytes do not match its digest."""

    repository: str
    tag: str
    image: ImageInfo
    manifest: bytes
    blobs: dict[str, bytes]  # digest -> what is served, the lie included
    true_layer: bytes
    port: int = 0
    log: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def layer_digest(self) -> str:
        return self.image.layer_digests[0]

    def requests(self) -> list[Request]:
        with self.lock:
            return list(self.log)

    def count(self, method: str, path_pattern: str) -> int:
        return count_matching(self.requests(), method, path_pattern)

    def blob_gets(self, repository: str | None = None, digest: str | None = None) -> int:
        pattern = blob_path(repository, digest) if repository else BLOB_PATH
        return self.count("GET", pattern)


def _lying_handler(upstream: LyingUpstream):
    manifest_digest = upstream.image.manifest_digest
    references = {upstream.tag, manifest_digest}
    prefix = f"/v2/{upstream.repository}/"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):
            pass  # requests are counted in upstream.log instead

        def answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            path = self.path.split("?", 1)[0]
            with upstream.lock:
                upstream.log.append(Request(self.command, path, status))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def route(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/v2/":
                return self.answer(200, b"{}", {"Content-Type": "application/json"})
            if path.startswith(prefix):
                kind, _, reference = path[len(prefix) :].partition("/")
                if kind == "manifests" and reference in references:
                    return self.answer(
                        200,
                        upstream.manifest,
                        {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": manifest_digest},
                    )
                if kind == "blobs" and reference in upstream.blobs:
                    # The header claims the digest that was asked for, as an honest
                    # registry's would; only hashing the body shows the lie.
                    return self.answer(
                        200,
                        upstream.blobs[reference],
                        {
                            "Content-Type": "application/octet-stream",
                            "Docker-Content-Digest": reference,
                        },
                    )
            error = {"errors": [{"code": "NAME_UNKNOWN", "message": "not here"}]}
            return self.answer(
                404, json.dumps(error).encode(), {"Content-Type": "application/json"}
            )

        do_GET = route
        do_HEAD = route

    return Handler


@contextlib.contextmanager
def lying_upstream(directory: Path, repository: str = "liar/app", tag: str = "1.0"):
    """A plain-HTTP registry on a free loopback port serving `repository:tag`: its
    manifest and config are honest, its one layer is the same length with every byte
    flipped. Yields a LyingUpstream that counts requests; stopped afterwards.
    """
    image = make_image(
        directory,
        tag,
        layers=[{"payload.bin": b"the honest layer " + secrets.token_bytes(4096)}],
    )
    true_layer = read_blob(directory, image.layer_digests[0])
    blobs = {
        image.config_digest: read_blob(directory, image.config_digest),
        image.layer_digests[0]: bytes(b ^ 0xFF for b in true_layer),
    }
    upstream = LyingUpstream(
        repository=repository,
        tag=tag,
        image=image,
        manifest=read_blob(directory, image.manifest_digest),
        blobs=blobs,
        true_layer=true_layer,
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), _lying_handler(upstream))
    server.daemon_threads = True
    upstream.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="lying-upstream", daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- images and clients ------------------------------------------------------------


def make_big_image(directory: Path, tag: str, size: int = 100 * MIB) -> ImageInfo:
    """An image whose one layer is `size` random bytes, uncompressed (random data does
    not compress, and gzip would only cost time); new digests on every call.
    """
    return make_image(directory, tag, layers=[{"random.bin": os.urandom(size)}], gzip=False)


def client_tool(name: str, directory: Path, insecure_host: str) -> Tool:
    """skopeo (with --insecure-policy) or podman (on a vfs store) reading nothing of
    the machine's configuration; `insecure_host` is plain HTTP to it.
    """
    if name == "podman":
        return podman_tool(directory, insecure_host)
    path = require_tool(name)
    env = isolated_client_env(directory, insecure_host)
    if name == "skopeo":
        return Tool([path, "--insecure-policy"], env)
    return Tool([path], env)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
