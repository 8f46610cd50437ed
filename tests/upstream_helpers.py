"""A small upstream registry on loopback for the mirror tests: scripted content, auth and lies.

It serves what a mirror asks of an upstream (`/v2/`, manifests by tag or digest, HEAD
and GET, blobs) from dicts, behind no auth, Basic, or the Docker token flow, and
records every request, so tests can count what reached it and with which headers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.registry_helpers import (
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    canonical,
)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Repository:
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # ref -> (type, body)
    blobs: dict[str, bytes] = field(default_factory=dict)
    referrers: dict[str, list[dict]] = field(default_factory=dict)  # subject -> descriptors


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Upstream:
    """A registry on 127.0.0.1 (`url`); `auth` is None, "basic" or "bearer"."""

    def __init__(self, *, auth: str | None = None, username: str = "up", password: str = "up-pw"):
        self.repositories: dict[str, Repository] = {}
        self.requests: list[Request] = []
        self.auth = auth
        self.username, self.password = username, password
        # Digests whose blob bytes are served wrong (a corrupt or lying upstream).
        self.lies: set[str] = set()
        self.status: int | None = None  # answer every /v2/<repo> request with this
        self.manifest_get_status: int | None = None  # and manifest GETs (not HEADs) this
        self.padding: dict[str, bytes] = {}  # digest -> bytes served after the blob's own
        self.redirect_blobs_to: str | None = None  # another server's URL, for blob GETs
        self.token_override: str | None = None  # the token the token endpoint hands out
        self.tokens_issued = 0
        self.lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                upstream._handle(self, head=False)

            def do_HEAD(self):
                upstream._handle(self, head=True)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # Content

    def repository(self, name: str) -> Repository:
        return self.repositories.setdefault(name, Repository())

    def add_image(self, name: str, tag: str | None, layers: list[bytes], *, arch: str = "amd64"):
        """An image manifest with a config and these layers; (manifest bytes, its digest)."""
        repository = self.repository(name)
        config = canonical({"architecture": arch, "os": "linux", "rootfs": {"type": "layers"}})
        repository.blobs[sha256(config)] = config
        for layer in layers:
            repository.blobs[sha256(layer)] = layer
        manifest = canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
                "layers": [
                    {"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}
                    for layer in layers
                ],
            }
        )
        return self._add_manifest(repository, tag, OCI_MANIFEST, manifest)

    def add_index(self, name: str, tag: str, children: list[tuple[bytes, str, str]]):
        """An index of manifests already added: (bytes, digest, architecture) each."""
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": digest,
                    "size": len(body),
                    "platform": {"architecture": arch, "os": "linux"},
                }
                for body, digest, arch in children
            ],
        }
        return self._add_manifest(self.repository(name), tag, OCI_INDEX, canonical(document))

    def add_referrer(self, name: str, subject: tuple[bytes, str], artifact_type: str):
        """An artifact manifest whose subject is `subject` (bytes, digest), listed by the
        referrers API; (its bytes, its digest).
        """
        repository = self.repository(name)
        empty = b"{}"
        repository.blobs[sha256(empty)] = empty
        descriptor = {"mediaType": OCI_EMPTY, "digest": sha256(empty), "size": len(empty)}
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": descriptor,
            "layers": [descriptor],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject[1], "size": len(subject[0])},
        }
        body, digest = self._add_manifest(repository, None, OCI_MANIFEST, canonical(document))
        repository.referrers.setdefault(subject[1], []).append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(body),
                "artifactType": artifact_type,
            }
        )
        return body, digest

    @staticmethod
    def _add_manifest(repository: Repository, tag, media_type: str, body: bytes):
        digest = sha256(body)
        repository.manifests[digest] = (media_type, body)
        if tag:
            repository.manifests[tag] = (media_type, body)
        return body, digest

    def count(self, method: str, fragment: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r.method == method and fragment in r.path)

    # Serving

    def _handle(self, handler: BaseHTTPRequestHandler, *, head: bool) -> None:
        parts = urlsplit(handler.path)
        with self.lock:
            self.requests.append(Request(handler.command, handler.path, dict(handler.headers)))
        if parts.path == "/token":
            self._token(handler, parse_qs(parts.query))
            return
        if not self._authorized(handler):
            return
        if self.status is not None and parts.path != "/v2/":
            self._send(handler, self.status, b'{"errors":[{"code":"UNKNOWN","message":"down"}]}')
            return
        if parts.path == "/v2/":
            self._send(handler, 200, b"{}")
            return
        for kind in ("manifests", "blobs", "referrers"):
            name, marker, reference = parts.path[len("/v2/") :].rpartition(f"/{kind}/")
            if marker and parts.path.startswith("/v2/"):
                self._content(handler, kind, name, reference, head=head)
                return
        self._send(handler, 404, b'{"errors":[{"code":"UNSUPPORTED","message":"no route"}]}')

    def _authorized(self, handler) -> bool:
        given = handler.headers.get("Authorization", "")
        if self.auth is None:
            return True
        if self.auth == "basic":
            if given == self._basic():
                return True
            self._send(handler, 401, b"{}", {"WWW-Authenticate": 'Basic realm="upstream"'})
            return False
        if given.startswith("Bearer tok-"):
            return True
        challenge = (
            f'Bearer realm="{self.url}/token",service="upstream",'
            f'scope="repository:{handler.path}:pull"'
        )
        self._send(handler, 401, b"{}", {"WWW-Authenticate": challenge})
        return False

    def _basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    def _token(self, handler, query) -> None:
        if self.username and handler.headers.get("Authorization", "") != self._basic():
            self._send(handler, 401, b'{"errors":[{"code":"UNAUTHORIZED","message":"who?"}]}')
            return
        with self.lock:
            self.tokens_issued += 1
            token = self.token_override or f"tok-{self.tokens_issued}"
        body = json.dumps({"token": token, "expires_in": 300, "scope": query.get("scope")})
        self._send(handler, 200, body.encode())

    def _content(self, handler, kind: str, name: str, reference: str, *, head: bool) -> None:
        repository = self.repositories.get(name)
        if kind == "referrers":
            listed = repository.referrers.get(reference, []) if repository else []
            index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed}
            self._send(handler, 200, canonical(index), {"Content-Type": OCI_INDEX}, head=head)
            return
        if kind == "manifests":
            if self.manifest_get_status is not None and not head:
                self._send(handler, self.manifest_get_status, b'{"errors":[]}')
                return
            found = repository.manifests.get(reference) if repository else None
            if found is None:
                body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'
                self._send(handler, 404, body)
                return
            media_type, body = found
            headers = {"Content-Type": media_type, "Docker-Content-Digest": sha256(body)}
            self._send(handler, 200, body, headers, head=head)
            return
        if self.redirect_blobs_to:
            location = f"{self.redirect_blobs_to}/v2/{name}/blobs/{reference}"
            self._send(handler, 307, b"", {"Location": location})
            return
        blob = repository.blobs.get(reference) if repository else None
        if blob is None:
            self._send(handler, 404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"no blob"}]}')
            return
        if reference in self.lies:
            blob = bytes([blob[0] ^ 1]) + blob[1:]
        blob += self.padding.get(reference, b"")
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": reference}
        self._send(handler, 200, blob, headers, head=head)

    @staticmethod
    def _send(handler, status: int, body: bytes, headers=None, *, head: bool = False) -> None:
        handler.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if not head:
            handler.wfile.write(body)
