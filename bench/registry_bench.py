"""Throughput and latency benchmark for any OCI Distribution / Docker Registry v2 server.

Pushes a big blob four ways (monolithic PUT, single POST, chunked PATCH over one keep-alive
connection, chunked PATCH with a new connection per request), pulls it once and in
parallel, times manifest HEAD/GET over one keep-alive connection and, given the server's
pid, samples its resident memory during the pushes. --steps picks which of these run.
Standard library only.

    python bench/registry_bench.py --url http://127.0.0.1:8000 --repo alice/bench \
        --user alice --password s3cret --pid "$(pgrep -o -f 'gunicorn.*forge.wsgi')" --json out.json

MB is 10^6 bytes and MiB is 2^20 bytes; both rates are printed. See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import gzip
import hashlib
import http.client
import io
import json
import os
import platform
import random
import re
import resource
import statistics
import struct
import sys
import tarfile
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin, urlsplit

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
MB = 10**6

PIECE = 16 * MiB  # the repeated random buffer
HEAD = 64 * KiB  # the start of each piece, rebuilt with its counter (keeps sends large)
READ_SIZE = 4 * MiB  # one readinto() when pulling
RSS_LIMIT = 150 * MiB
RSS_INTERVAL = 0.05
TIMEOUT = 900.0
REDIRECTS = (301, 302, 303, 307, 308)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCTETS = "application/octet-stream"

# The steps, in the order they run. pull and parallel read the monolithic blob.
STEPS = ("manifest", "monolithic", "single-post", "chunked", "chunked-new-conn", "pull", "parallel")
BIG_STEPS = STEPS[1:]
# The blob each big push uses, by index. Salts: seed * 3 + index for the first three (the
# digests they had before the fourth push existed), NEW_CONN_SALT + seed for the fourth,
# so no two blobs of any seeds are equal.
BLOB_OF_STEP = {"monolithic": 0, "single-post": 1, "chunked": 2, "chunked-new-conn": 3}
NEW_CONN_SALT = 3 << 22


class BenchError(Exception):
    """A step failed: wrong status, digest mismatch, broken connection."""


# --- sizes and formatting -------------------------------------------------------------------

_UNITS = {"": 1, "b": 1, "k": KiB, "m": MiB, "g": GiB, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes from '1GiB', '16MiB', '500MB', '4k' or '1048576' (bare K/M/G are binary)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)\s*", text.lower())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    number, unit, binary, byte = match.groups()
    factor = _UNITS[unit]
    if unit and byte and not binary:
        factor = 1000 ** "bkmgt".index(unit)
    size = int(float(number) * factor)
    if size <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive: {text!r}")
    return size


def human_size(size: int) -> str:
    """'1 GiB', '256 MiB', '300 KiB', else bytes."""
    for unit, name in ((GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} B"


def rates(size: int, seconds: float) -> dict:
    """The throughput figures of moving size bytes in seconds."""
    seconds = max(seconds, 1e-9)
    return {
        "bytes": size,
        "seconds": round(seconds, 4),
        "mb_per_s": round(size / MB / seconds, 1),
        "mib_per_s": round(size / MiB / seconds, 1),
    }


def latency_stats(samples: list[float]) -> dict:
    """Median, p95 and mean of durations in seconds, as milliseconds."""
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, max(0, round(0.95 * len(ms)) - 1))]
    return {
        "count": len(ms),
        "median_ms": round(statistics.median(ms), 3),
        "p95_ms": round(p95, 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "max_ms": round(ms[-1], 3),
    }


def progress(message: str) -> None:
    """A progress line on stderr, so stdout holds only the table."""
    print(f"... {message}", file=sys.stderr, flush=True)


# --- blob data ------------------------------------------------------------------------------


class BlobSource:
    """Deterministic, barely compressible bytes streamed without holding them in memory.

    Piece i of the blob is the shared random buffer with its first 8 bytes replaced by a
    counter (salt, i), so no two pieces are equal and no blob of another salt matches.
    """

    def __init__(self, size: int, salt: int, base: memoryview):
        self.size = size
        self.salt = salt
        self._base = base
        self._digest: str | None = None

    def _head(self, index: int) -> memoryview:
        counter = struct.pack(">Q", (self.salt << 40) | index)
        return memoryview(counter + self._base[8:HEAD])

    def views(self, start: int = 0, stop: int | None = None):
        """Yield memoryviews covering bytes [start, stop) of the blob."""
        stop = self.size if stop is None else stop
        pos = start
        while pos < stop:
            index, offset = divmod(pos, PIECE)
            end = min(stop - index * PIECE, PIECE)
            for seg_start, seg in ((0, self._head(index)), (HEAD, self._base[HEAD:])):
                lo, hi = max(offset, seg_start), min(end, seg_start + len(seg))
                if lo < hi:
                    yield seg[lo - seg_start : hi - seg_start]
            pos = index * PIECE + end

    @property
    def digest(self) -> str:
        """The blob's sha256 digest, computed once in one pass."""
        if self._digest is None:
            sha = hashlib.sha256()
            for view in self.views():
                sha.update(view)
            self._digest = "sha256:" + sha.hexdigest()
        return self._digest


def make_base(seed: int) -> memoryview:
    """The 16 MiB pseudo-random buffer every piece is made from."""
    return memoryview(random.Random(seed).randbytes(PIECE))


def timed_views(views, marks: dict):
    """Pass views through, noting when the last one has been handed to the socket."""
    yield from views
    marks["sent"] = time.perf_counter()


def sha256_digest(data: bytes) -> str:
    """'sha256:<hex>' of data."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- the HTTP client ------------------------------------------------------------------------


@dataclass
class Reply:
    """A fully read response."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes
    url: str

    def header(self, name: str, default: str | None = None) -> str | None:
        """One response header."""
        return self.headers.get(name, default)


def parse_challenge(header: str) -> tuple[str, dict]:
    """('bearer', {'realm': ..., 'service': ..., 'scope': ...}) from WWW-Authenticate."""
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for key, quoted, bare in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', rest):
        params[key.lower()] = quoted or bare
    return scheme.lower(), params


def describe_error(reply: Reply) -> str:
    """A short text for a failed response: the OCI error codes if any, else the body start."""
    try:
        errors = json.loads(reply.body)["errors"]
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
    except (ValueError, KeyError, TypeError, AttributeError):
        return reply.body[:200].decode("utf-8", "replace").strip()


class Registry:
    """A tiny registry client: keep-alive connections, Basic auth, the Bearer token dance."""

    def __init__(self, url: str, repo: str, user: str | None = None, password: str | None = None):
        self.root = url.rstrip("/")
        self.origin = urlsplit(self.root)[:2]
        self.repo = repo
        self.user = user
        self.password = password
        self.token: str | None = None
        self.connections_opened = 0
        self._conns: dict[tuple, http.client.HTTPConnection] = {}

    def clone(self) -> Registry:
        """Another client with the same credentials and token but its own connections."""
        other = Registry(self.root, self.repo, self.user, self.password)
        other.token = self.token
        return other

    def close(self) -> None:
        """Close every connection."""
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def request_new_connection(
        self, method: str, url: str, body=None, headers: dict | None = None
    ) -> Reply:
        """Close every connection, then send one request with Connection: close and read it.

        The request (and a retry after a 401 challenge) goes out on a brand-new TCP
        connection, which the server is asked to close after answering.
        """
        self.close()
        reply = self.request(method, url, body, {**(headers or {}), "Connection": "close"})
        self.close()
        return reply

    def url(self, path: str) -> str:
        """An absolute URL for a /v2 path, or a Location resolved against the registry."""
        return urljoin(self.root + "/", path)

    def repo_url(self, tail: str) -> str:
        """The URL of /v2/<repo>/<tail>."""
        return self.url(f"/v2/{self.repo}/{tail}")

    # -- auth --

    def _basic(self) -> str:
        pair = f"{self.user}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def _auth_headers(self, url: str) -> dict:
        if urlsplit(url)[:2] != self.origin:
            return {}  # never hand credentials to a redirect target (e.g. object storage)
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.user is not None:
            return {"Authorization": self._basic()}
        return {}

    def _fetch_token(self, params: dict) -> None:
        realm = params.get("realm")
        if not realm:
            raise BenchError("401 with a Bearer challenge that names no realm")
        scopes = [f"repository:{self.repo}:pull,push"]
        if params.get("scope") and params["scope"] not in scopes:
            scopes.append(params["scope"])
        query = [("scope", s) for s in scopes]
        if params.get("service"):
            query.insert(0, ("service", params["service"]))
        realm = urljoin(self.root + "/", realm)
        token_url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        headers = {"Authorization": self._basic()} if self.user is not None else {}
        reply = self._plain_get(token_url, headers)
        if reply.status != 200:
            raise BenchError(
                f"token request GET {token_url} answered {reply.status}: {describe_error(reply)}"
            )
        try:
            data = json.loads(reply.body)
            self.token = data.get("token") or data["access_token"]
        except (ValueError, KeyError) as exc:
            raise BenchError(f"token response from {realm} has no token") from exc

    def _plain_get(self, url: str, headers: dict) -> Reply:
        parts = urlsplit(url)
        conn = self._new_connection(parts.scheme, parts.netloc)
        try:
            conn.request(
                "GET", parts.path + (f"?{parts.query}" if parts.query else ""), None, headers
            )
            resp = conn.getresponse()
            return Reply(resp.status, resp.headers, resp.read(), url)
        except OSError as exc:
            raise BenchError(f"GET {url}: {exc}") from exc
        finally:
            conn.close()

    def _retry_after_401(self, resp: http.client.HTTPResponse, url: str) -> bool:
        """Act on a 401 challenge; True when the request should be sent again."""
        if urlsplit(url)[:2] != self.origin:
            return False
        scheme, params = parse_challenge(resp.getheader("WWW-Authenticate", ""))
        if scheme == "bearer":
            self._fetch_token(params)
            return True
        if scheme == "basic" and self.token:
            self.token = None  # the token was not wanted; fall back to Basic
            return self.user is not None
        return False

    # -- connections --

    def _new_connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=TIMEOUT)
        if scheme == "http":
            return http.client.HTTPConnection(netloc, timeout=TIMEOUT)
        raise BenchError(f"unsupported URL scheme {scheme!r}")

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        key = (scheme, netloc)
        if key not in self._conns:
            self._conns[key] = self._new_connection(scheme, netloc)
        return self._conns[key]

    def _drop(self, scheme: str, netloc: str) -> None:
        conn = self._conns.pop((scheme, netloc), None)
        if conn is not None:
            conn.close()

    def _send(self, method: str, url: str, body, headers: dict) -> http.client.HTTPResponse:
        """Send once; on a dead keep-alive connection, reconnect and send once more."""
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for attempt in (1, 2):
            conn = self._connection(parts.scheme, parts.netloc)
            reused = conn.sock is not None
            if not reused:
                self.connections_opened += 1
            payload = body() if callable(body) else body
            try:
                conn.request(method, target, payload, headers)
            except OSError as exc:
                early = _early_response(conn)  # the server may have answered and hung up
                if early is not None:
                    return early
                self._drop(parts.scheme, parts.netloc)
                if reused and attempt == 1:
                    continue
                raise BenchError(f"{method} {url}: connection error: {exc}") from exc
            try:
                return conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                self._drop(parts.scheme, parts.netloc)
                if reused and attempt == 1 and isinstance(exc, ConnectionError):
                    continue
                raise BenchError(f"{method} {url}: no response: {exc!r}") from exc
        raise AssertionError("unreachable")

    def open(self, method: str, url: str, body=None, headers: dict | None = None):
        """Send a request (retrying once after a 401 challenge); the body is left unread.

        body is None, bytes, or a callable returning an iterable of bytes-like pieces (so it
        can be sent again after a challenge); set Content-Length for iterables yourself.
        """
        for attempt in (1, 2, 3):
            all_headers = {**self._auth_headers(url), **(headers or {})}
            if body is None and method in ("POST", "PUT", "PATCH"):
                all_headers.setdefault("Content-Length", "0")
            resp = self._send(method, url, body, all_headers)
            if resp.status == 401 and attempt < 3 and self._retry_after_401(resp, url):
                resp.read()
                continue
            return resp
        raise AssertionError("unreachable")

    def request(self, method: str, url: str, body=None, headers: dict | None = None) -> Reply:
        """Send a request and read the whole response."""
        resp = self.open(method, url, body, headers)
        try:
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop(*urlsplit(url)[:2])
            raise BenchError(f"{method} {url}: reading the response failed: {exc!r}") from exc
        return Reply(resp.status, resp.headers, data, url)


def _early_response(conn: http.client.HTTPConnection) -> http.client.HTTPResponse | None:
    """A response the server sent before we finished sending the body, if there is one."""
    if conn.sock is None:
        return None
    try:
        return conn.getresponse()
    except (OSError, http.client.HTTPException):
        return None


def expect(reply: Reply, statuses: tuple[int, ...], what: str) -> Reply:
    """Fail the step unless the reply has one of the statuses."""
    if reply.status not in statuses:
        wanted = " or ".join(str(s) for s in statuses)
        raise BenchError(
            f"{what}: {reply.status} from {reply.url} (wanted {wanted}): {describe_error(reply)}"
        )
    return reply


def location(reply: Reply, what: str) -> str:
    """The reply's Location, resolved against the URL it answered."""
    loc = reply.header("Location")
    if not loc:
        raise BenchError(f"{what}: {reply.status} from {reply.url} without a Location header")
    return urljoin(reply.url, loc)


def with_digest(url: str, digest: str) -> str:
    """url with ?digest= (or &digest=) appended."""
    return url + ("&" if "?" in url else "?") + urlencode({"digest": digest})


def check_digest_header(reply: Reply, digest: str, what: str) -> None:
    """Fail if the server names a different Docker-Content-Digest."""
    named = reply.header("Docker-Content-Digest")
    if named and named != digest:
        raise BenchError(f"{what}: server says digest {named}, expected {digest}")


# --- server memory --------------------------------------------------------------------------


def read_vmrss(pid: int) -> int | None:
    """Resident set size of a process in bytes, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * KiB
    except (OSError, ValueError, IndexError):
        return None
    return 0  # kernel threads and zombies have no VmRSS


def parent_map() -> dict[int, int]:
    """pid -> parent pid for every process, from /proc/*/stat."""
    parents = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
            parents[int(name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return parents


def process_tree(roots: list[int]) -> set[int]:
    """The roots and all their descendants."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parent_map().items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


class RssSampler:
    """Samples VmRSS of the server processes in a thread while a step runs."""

    def __init__(self, roots: list[int], interval: float = RSS_INTERVAL):
        self.roots = roots
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self.peak_total = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        """Take one sample of every process in the tree."""
        total = 0
        for pid in process_tree(self.roots):
            rss = read_vmrss(pid)
            if rss:
                total += rss
                self.peaks[pid] = max(self.peaks.get(pid, 0), rss)
        self.peak_total = max(self.peak_total, total)
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def summary(self) -> dict:
        """The peak single-process and summed RSS seen, in MiB."""
        pid, peak = max(self.peaks.items(), key=lambda kv: kv[1], default=(None, 0))
        return {
            "peak_process_mib": round(peak / MiB, 1),
            "peak_pid": pid,
            "peak_sum_mib": round(self.peak_total / MiB, 1),
            "processes": len(self.peaks),
            "samples": self.samples,
            "under_150_mib": peak < RSS_LIMIT,
        }


def sampling(pids: list[int]):
    """An RssSampler for pids, or a do-nothing context when no pid was given."""
    if pids:
        return RssSampler(pids)
    return _NoSampler()


class _NoSampler:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def summary(self) -> None:
        return None


# --- steps ----------------------------------------------------------------------------------


def check_api(reg: Registry) -> dict:
    """GET /v2/: the server speaks the protocol and our credentials are accepted."""
    reply = reg.request("GET", reg.url("/v2/"))
    if reply.status == 401:
        hint = "check --user/--password" if reg.user is not None else "pass --user and --password"
        raise BenchError(f"GET /v2/: 401, the server wants credentials ({hint})")
    expect(reply, (200,), "GET /v2/")
    return {
        "api_version": reply.header("Docker-Distribution-API-Version"),
        "auth": "bearer token" if reg.token else ("basic" if reg.user is not None else "none"),
    }


def start_upload(reg: Registry, what: str) -> str:
    """POST /v2/<repo>/blobs/uploads/ and return the session's Location."""
    reply = expect(reg.request("POST", reg.repo_url("blobs/uploads/")), (202,), what)
    return location(reply, what)


def push_small(reg: Registry, data: bytes, what: str) -> str:
    """Upload a small blob with POST then PUT ?digest=; return its digest."""
    digest = sha256_digest(data)
    loc = start_upload(reg, what)
    headers = {"Content-Type": OCTETS, "Content-Length": str(len(data))}
    reply = reg.request("PUT", with_digest(loc, digest), data, headers)
    check_digest_header(expect(reply, (201,), what), digest, what)
    return digest


def push_monolithic(reg: Registry, source: BlobSource, pids: list[int]) -> dict:
    """POST, then PUT <location>?digest= with the whole blob streamed as the body."""
    what = "monolithic push (PUT)"
    marks: dict = {}
    headers = {"Content-Type": OCTETS, "Content-Length": str(source.size)}
    with sampling(pids) as sampler:
        started = time.perf_counter()
        loc = start_upload(reg, what)
        url = with_digest(loc, source.digest)
        reply = reg.request("PUT", url, lambda: timed_views(source.views(), marks), headers)
        finished = time.perf_counter()
    check_digest_header(expect(reply, (201,), what), source.digest, what)
    result = rates(source.size, finished - started)
    result["server_wait_ms"] = round((finished - marks.get("sent", finished)) * 1000, 1)
    result["digest"] = source.digest
    result["rss"] = sampler.summary()
    return result


def push_single_post(reg: Registry, source: BlobSource, pids: list[int]) -> dict:
    """POST /blobs/uploads/?digest= with the blob as the body, if the server supports it."""
    what = "single-POST push"
    probe = b"registry_bench single-POST probe %d" % source.salt
    probe_url = with_digest(reg.repo_url("blobs/uploads/"), sha256_digest(probe))
    headers = {"Content-Type": OCTETS, "Content-Length": str(len(probe))}
    reply = expect(reg.request("POST", probe_url, probe, headers), (201, 202), what)
    if reply.status == 202:  # the server opened a session instead; close it again
        reg.request("DELETE", location(reply, what))
        return {"supported": False}
    marks: dict = {}
    headers = {"Content-Type": OCTETS, "Content-Length": str(source.size)}
    url = with_digest(reg.repo_url("blobs/uploads/"), source.digest)
    with sampling(pids) as sampler:
        started = time.perf_counter()
        reply = reg.request("POST", url, lambda: timed_views(source.views(), marks), headers)
        finished = time.perf_counter()
    check_digest_header(expect(reply, (201,), what), source.digest, what)
    result = {"supported": True, **rates(source.size, finished - started)}
    result["server_wait_ms"] = round((finished - marks.get("sent", finished)) * 1000, 1)
    result["digest"] = source.digest
    result["rss"] = sampler.summary()
    return result


def patch_chunk(
    reg: Registry, loc: str, source: BlobSource, start: int, end: int, new_conn: bool = False
) -> str:
    """PATCH bytes [start, end) to the session at loc; return the next Location.

    With new_conn the PATCH goes out on a brand-new connection with Connection: close.
    """
    what = f"chunked push: PATCH bytes {start}-{end - 1}"
    headers = {
        "Content-Type": OCTETS,
        "Content-Length": str(end - start),
        "Content-Range": f"{start}-{end - 1}",
    }
    send = reg.request_new_connection if new_conn else reg.request
    reply = expect(send("PATCH", loc, lambda: source.views(start, end), headers), (202,), what)
    stored = reply.header("Range")
    if stored and stored != f"0-{end - 1}":
        raise BenchError(f"{what}: server reports Range {stored}, expected 0-{end - 1}")
    return location(reply, what)


def push_chunked(reg: Registry, source: BlobSource, chunk: int, pids: list[int]) -> dict:
    """POST, PATCH each chunk following Location, then PUT ?digest= with no body."""
    what = "chunked push"
    with sampling(pids) as sampler:
        started = time.perf_counter()
        reply = expect(reg.request("POST", reg.repo_url("blobs/uploads/")), (202,), what)
        loc = location(reply, what)
        minimum = int(reply.header("OCI-Chunk-Min-Length") or 0)
        chunk = max(chunk, minimum)
        durations = []
        for start in range(0, source.size, chunk):
            began = time.perf_counter()
            loc = patch_chunk(reg, loc, source, start, min(start + chunk, source.size))
            durations.append(time.perf_counter() - began)
        reply = reg.request("PUT", with_digest(loc, source.digest))
        finished = time.perf_counter()
    check_digest_header(expect(reply, (201,), f"{what}: final PUT"), source.digest, what)
    result = rates(source.size, finished - started)
    result.update(chunk_bytes=chunk, chunks=len(durations), digest=source.digest)
    result.update(patch_figures(durations), rss=sampler.summary())
    return result


def patch_figures(durations: list[float]) -> dict:
    """First, median, last (and min, p95, max) PATCH durations in ms, and last/first."""
    ms = [round(d * 1000, 1) for d in durations]
    stats = latency_stats(durations)
    return {
        "patch_ms": {
            "first": ms[0],
            "median": round(stats["median_ms"], 1),
            "last": ms[-1],
            "min": min(ms),
            "p95": round(stats["p95_ms"], 1),
            "max": max(ms),
            "last_over_first": round(durations[-1] / max(durations[0], 1e-9), 2),
        },
        "patch_durations_ms": ms,
    }


def push_chunked_new_conn(reg: Registry, source: BlobSource, chunk: int, pids: list[int]) -> dict:
    """POST, one PATCH per chunk, PUT ?digest=: every request on a brand-new connection.

    Before each request the client's connections are closed and the request carries
    Connection: close, as a client behind a per-request load balancer (or one that never
    reuses connections) would. Each PATCH's wall time includes its TCP connect.
    """
    what = "chunked push, new connection per PATCH"
    opened = reg.connections_opened
    with sampling(pids) as sampler:
        started = time.perf_counter()
        reply = reg.request_new_connection("POST", reg.repo_url("blobs/uploads/"))
        expect(reply, (202,), what)
        post_done = time.perf_counter()
        loc = location(reply, what)
        minimum = int(reply.header("OCI-Chunk-Min-Length") or 0)
        chunk = max(chunk, minimum)
        durations = []
        for start in range(0, source.size, chunk):
            began = time.perf_counter()
            end = min(start + chunk, source.size)
            loc = patch_chunk(reg, loc, source, start, end, new_conn=True)
            durations.append(time.perf_counter() - began)
        put_started = time.perf_counter()
        reply = reg.request_new_connection("PUT", with_digest(loc, source.digest))
        finished = time.perf_counter()
    check_digest_header(expect(reply, (201,), f"{what}: final PUT"), source.digest, what)
    result = rates(source.size, finished - started)
    result.update(chunk_bytes=chunk, chunks=len(durations), digest=source.digest)
    result.update(
        connections_opened=reg.connections_opened - opened,
        post_ms=round((post_done - started) * 1000, 1),
        put_ms=round((finished - put_started) * 1000, 1),
    )
    result.update(patch_figures(durations), rss=sampler.summary())
    return result


def open_blob(reg: Registry, digest: str) -> tuple[http.client.HTTPResponse, str, bool]:
    """GET the blob, following redirects; return the 200 response, its URL, and if redirected."""
    url = reg.repo_url(f"blobs/{digest}")
    for _ in range(5):
        resp = reg.open("GET", url)
        if resp.status not in REDIRECTS:
            break
        resp.read()
        url = urljoin(url, resp.getheader("Location") or "")
    else:
        raise BenchError(f"pull {digest}: too many redirects")
    if resp.status != 200:
        reply = Reply(resp.status, resp.headers, resp.read(), url)
        expect(reply, (200,), f"pull {digest}")
    return resp, url, url != reg.repo_url(f"blobs/{digest}")


def pull(reg: Registry, digest: str, size: int, verify: bool = True) -> dict:
    """Pull the blob, reading into one large buffer and discarding; check size (and sha256)."""
    buf = memoryview(bytearray(READ_SIZE))
    sha = hashlib.sha256() if verify else None
    started = time.perf_counter()
    resp, url, redirected = open_blob(reg, digest)
    first_byte = time.perf_counter()
    received = 0
    try:
        while n := resp.readinto(buf):
            received += n
            if sha:
                sha.update(buf[:n])
    except (OSError, http.client.HTTPException) as exc:
        raise BenchError(f"pull {digest}: failed after {received} bytes: {exc!r}") from exc
    finished = time.perf_counter()
    if received != size:
        raise BenchError(f"pull {digest}: got {received} bytes, expected {size}")
    if sha and "sha256:" + sha.hexdigest() != digest:
        raise BenchError(f"pull {digest}: content has sha256:{sha.hexdigest()}")
    result = rates(size, finished - started)
    result.update(
        first_byte_ms=round((first_byte - started) * 1000, 1),
        redirected=redirected,
        verified_sha256=verify,
    )
    if redirected:
        result["redirect_host"] = urlsplit(url).netloc
    return result


def parallel_pulls(reg: Registry, digest: str, size: int, count: int) -> dict:
    """Count simultaneous pulls, one thread and one connection each; sizes checked."""
    barrier = threading.Barrier(count + 1)
    results: list[dict | None] = [None] * count
    errors: list[str] = []

    def worker(i: int) -> None:
        client = reg.clone()
        barrier.wait()
        try:
            results[i] = pull(client, digest, size, verify=False)
        except BenchError as exc:
            errors.append(str(exc))
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise BenchError(f"{len(errors)} of {count} parallel pulls failed; first: {errors[0]}")
    slowest = max(results, key=lambda r: r["seconds"])
    fastest = min(results, key=lambda r: r["seconds"])
    result = {"pulls": count, **rates(size * count, wall)}
    result["slowest"] = {k: slowest[k] for k in ("seconds", "mb_per_s", "mib_per_s")}
    result["fastest"] = {k: fastest[k] for k in ("seconds", "mb_per_s", "mib_per_s")}
    return result


def tiny_image() -> tuple[bytes, bytes]:
    """A real one-file gzipped tar layer and an OCI image config naming its diff_id."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = b"hello from registry_bench\n"
        info = tarfile.TarInfo("bench.txt")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(raw.getvalue())]},
    }
    return json.dumps(config, sort_keys=True).encode(), layer


def push_manifest(reg: Registry, tag: str) -> tuple[bytes, str]:
    """Upload the tiny config and layer and PUT an OCI manifest under tag."""
    config, layer = tiny_image()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": push_small(reg, config, "config blob push"),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": OCI_LAYER,
                "digest": push_small(reg, layer, "layer blob push"),
                "size": len(layer),
            }
        ],
        "annotations": {"org.opencontainers.image.title": "registry_bench"},
    }
    body = json.dumps(manifest, indent=2).encode()
    digest = sha256_digest(body)
    headers = {"Content-Type": OCI_MANIFEST, "Content-Length": str(len(body))}
    what = f"manifest PUT :{tag}"
    reply = reg.request("PUT", reg.repo_url(f"manifests/{tag}"), body, headers)
    check_digest_header(expect(reply, (201,), what), digest, what)
    return body, digest


def time_manifest(reg: Registry, method: str, tag: str, body: bytes, digest: str, n: int):
    """N requests of one method for the manifest on the current connection; durations."""
    url = reg.repo_url(f"manifests/{tag}")
    headers = {"Accept": OCI_MANIFEST}
    what = f"manifest {method} :{tag}"
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        reply = reg.request(method, url, None, headers)
        if method == "GET" and reply.status in REDIRECTS:
            # Served direct from object storage: the client's wait includes the hop.
            check_digest_header(reply, digest, what)
            target = urljoin(url, reply.header("Location") or "")
            resp = reg.open("GET", target)
            reply = Reply(resp.status, resp.headers, resp.read(), target)
            samples.append(time.perf_counter() - started)
            expect(reply, (200,), what)
        else:
            samples.append(time.perf_counter() - started)
            expect(reply, (200,), what)
            check_digest_header(reply, digest, what)
        if method == "GET" and reply.body != body:
            raise BenchError(f"{what}: body differs from the manifest pushed")
        if method == "HEAD" and reply.header("Content-Length") not in (None, str(len(body))):
            raise BenchError(f"{what}: Content-Length {reply.header('Content-Length')}")
    return samples


def manifest_latency(reg: Registry, requests: int, tag: str = "bench") -> dict:
    """Push a small image under tag, then time HEAD and GET of it over one connection."""
    body, digest = push_manifest(reg, tag)
    result = {"tag": tag, "digest": digest, "manifest_bytes": len(body)}
    for method in ("HEAD", "GET"):
        opened = reg.connections_opened
        samples = time_manifest(reg, method, tag, body, digest, requests)
        result[method.lower()] = latency_stats(samples)
        result[method.lower()]["connections_opened"] = reg.connections_opened - opened
    return result


# --- running and reporting ------------------------------------------------------------------


def throughput_row(label: str, size: int, fig: dict, note: str = "") -> str:
    """One table line for a transfer."""
    return (
        f"{label:<32} {human_size(size):>9}  {fig['mb_per_s']:9.1f} MB/s "
        f"{fig['mib_per_s']:9.1f} MiB/s  {fig['seconds']:8.2f} s  {note}"
    ).rstrip()


def latency_row(label: str, fig: dict) -> str:
    """One table line for a latency series."""
    return (
        f"{label:<32} {'x' + str(fig['count']):>9}  median {fig['median_ms']:7.2f} ms  "
        f"p95 {fig['p95_ms']:7.2f} ms  mean {fig['mean_ms']:7.2f} ms  "
        f"(reconnects: {fig['connections_opened']})"
    )


def patch_row(label: str, fig: dict) -> str:
    """One table line for the PATCH durations of a chunked push."""
    patch = fig["patch_ms"]
    return (
        f"{label:<32} {'':>9}  {patch['first']:.1f} / {patch['median']:.1f} / "
        f"{patch['last']:.1f} ms  (last/first {patch['last_over_first']:.2f}x; "
        f"POST {fig['post_ms']:.1f} ms, final PUT {fig['put_ms']:.1f} ms)"
    )


def rss_row(label: str, rss: dict) -> str:
    """One table line for the server's memory during a push."""
    verdict = "under" if rss["under_150_mib"] else "NOT under"
    return (
        f"{label:<32} {'':>9}  peak {rss['peak_process_mib']:7.1f} MiB in one process "
        f"(pid {rss['peak_pid']}; {verdict} 150 MiB), sum {rss['peak_sum_mib']:.1f} MiB "
        f"over {rss['processes']} process(es), {rss['samples']} samples"
    )


def report(results: dict, args: argparse.Namespace) -> list[str]:
    """The table as lines."""
    size = args.size
    lines = [
        f"registry_bench: {args.url}  repo {args.repo}  (MB = 10^6 bytes, MiB = 2^20 bytes)",
        "-" * 100,
    ]
    if "api" in results:
        api = results["api"]
        lines.append(f"{'GET /v2/':<32} {'':>9}  ok, auth: {api['auth']}")
    if "manifest" in results:
        man = results["manifest"]
        lines.append(latency_row(f"manifest HEAD :{man['tag']}", man["head"]))
        lines.append(latency_row(f"manifest GET :{man['tag']}", man["get"]))
    if "push_monolithic" in results:
        fig = results["push_monolithic"]
        note = f"(server answered {fig['server_wait_ms']:.0f} ms after the last byte)"
        lines.append(throughput_row("push monolithic (POST+PUT)", size, fig, note))
    if "push_single_post" in results:
        fig = results["push_single_post"]
        if fig["supported"]:
            note = f"(server answered {fig['server_wait_ms']:.0f} ms after the last byte)"
            lines.append(throughput_row("push single POST ?digest=", size, fig, note))
        else:
            lines.append(f"{'push single POST ?digest=':<32} {'':>9}  not supported (202)")
    if "push_chunked" in results:
        fig = results["push_chunked"]
        note = f"({fig['chunks']} x {human_size(fig['chunk_bytes'])} PATCH)"
        lines.append(throughput_row("push chunked (PATCH)", size, fig, note))
    if "push_chunked_new_conn" in results:
        fig = results["push_chunked_new_conn"]
        note = (
            f"({fig['chunks']} x {human_size(fig['chunk_bytes'])} PATCH, "
            f"{fig['connections_opened']} connections)"
        )
        lines.append(throughput_row("push chunked, new conn per PATCH", size, fig, note))
        lines.append(patch_row("  PATCH first / median / last", fig))
    if "pull" in results:
        fig = results["pull"]
        note = f"(first byte {fig['first_byte_ms']:.1f} ms, sha256 verified"
        note += f", via {fig['redirect_host']})" if fig["redirected"] else ")"
        lines.append(throughput_row("pull", size, fig, note))
    if "parallel_pulls" in results:
        fig = results["parallel_pulls"]
        label = f"{fig['pulls']} parallel pulls, aggregate"
        lines.append(throughput_row(label, size * fig["pulls"], fig))
        lines.append(throughput_row("  slowest of them", size, fig["slowest"]))
        lines.append(throughput_row("  fastest of them", size, fig["fastest"]))
    for key, label in (
        ("push_monolithic", "server RSS, monolithic push"),
        ("push_single_post", "server RSS, single-POST push"),
        ("push_chunked", "server RSS, chunked push"),
        ("push_chunked_new_conn", "server RSS, chunked new-conn"),
    ):
        rss = results.get(key, {}).get("rss")
        if rss:
            lines.append(rss_row(label, rss))
    return lines


def environment(args: argparse.Namespace) -> dict:
    """Where and when the figures were taken."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "url": args.url,
        "repo": args.repo,
        "size_bytes": args.size,
        "chunk_bytes": args.chunk,
        "parallel": args.parallel,
        "requests": args.requests,
        "seed": args.seed,
        "steps": list(args.steps),
        "pids": args.pid,
        "units": "MB = 10^6 bytes, MiB = 2^20 bytes, ms = milliseconds",
        "client_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KiB, 1),
    }


def run(args: argparse.Namespace, results: dict) -> None:
    """Run the chosen steps in order, filling results; raises BenchError on the first failure."""
    reg = Registry(args.url, args.repo, args.user, args.password)
    steps = args.steps
    for pid in args.pid:
        if read_vmrss(pid) is None:
            raise BenchError(f"--pid {pid}: no such process (cannot read /proc/{pid}/status)")
    progress(f"GET {args.url}/v2/")
    results["api"] = check_api(reg)
    if "manifest" in steps:
        progress(f"manifest: push, then {args.requests} HEAD and {args.requests} GET")
        results["manifest"] = manifest_latency(reg, args.requests)
    if not any(step in steps for step in BIG_STEPS):
        return
    sources = blob_sources(args.size, args.seed)
    needed = {BLOB_OF_STEP[step] for step in steps if step in BLOB_OF_STEP}
    if "pull" in steps or "parallel" in steps:
        needed.add(0)  # the pulls read the monolithic blob
    progress(f"computing sha256 of {len(needed)} blob(s) of {human_size(args.size)}")
    started = time.perf_counter()
    for index in sorted(needed):
        _ = sources[index].digest
    results["client_sha256"] = rates(args.size * len(needed), time.perf_counter() - started)
    if "monolithic" in steps:
        progress(f"push {human_size(args.size)} monolithic (POST + PUT)")
        results["push_monolithic"] = push_monolithic(reg, sources[0], args.pid)
    if "single-post" in steps:
        progress(f"push {human_size(args.size)} single POST ?digest=")
        results["push_single_post"] = push_single_post(reg, sources[1], args.pid)
    if "chunked" in steps:
        progress(f"push {human_size(args.size)} in {human_size(args.chunk)} chunks")
        results["push_chunked"] = push_chunked(reg, sources[2], args.chunk, args.pid)
    if "chunked-new-conn" in steps:
        progress(
            f"push {human_size(args.size)} in {human_size(args.chunk)} chunks, "
            "a new connection per request"
        )
        results["push_chunked_new_conn"] = push_chunked_new_conn(
            reg, sources[3], args.chunk, args.pid
        )
    if ("pull" in steps or "parallel" in steps) and "monolithic" not in steps:
        results["pull_blob"] = ensure_blob(reg, sources[0])
    if "pull" in steps:
        progress(f"pull {human_size(args.size)}")
        results["pull"] = pull(reg, sources[0].digest, args.size)
    if "parallel" in steps:
        progress(f"{args.parallel} parallel pulls of {human_size(args.size)}")
        results["parallel_pulls"] = parallel_pulls(reg, sources[0].digest, args.size, args.parallel)
    reg.close()


def blob_sources(size: int, seed: int) -> list[BlobSource]:
    """The four big blobs, indexed as in BLOB_OF_STEP; their digests are computed lazily."""
    base = make_base(seed)
    sources = [BlobSource(size, seed * 3 + i, base) for i in range(3)]
    sources.append(BlobSource(size, NEW_CONN_SALT + seed, base))
    return sources


def ensure_blob(reg: Registry, source: BlobSource) -> dict:
    """Make sure the monolithic blob is in the repo for the pulls, pushing it untimed if not.

    Used when pull or parallel runs without the monolithic step; returns what was done.
    """
    reply = reg.request("HEAD", reg.repo_url(f"blobs/{source.digest}"))
    if reply.status == 200 and reply.header("Content-Length") in (None, str(source.size)):
        return {"digest": source.digest, "pushed": False}
    progress(f"push {human_size(source.size)} monolithic for the pulls (not reported)")
    push_monolithic(reg, source, [])
    return {"digest": source.digest, "pushed": True}


def pid_list(text: str) -> list[int]:
    """'123' or '123,456' as pids."""
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a pid list: {text!r}") from exc


def step_list(text: str) -> tuple[str, ...]:
    """'manifest,chunked' as steps in their running order; 'all' (or empty) is every step."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names or names == ["all"]:
        return STEPS
    unknown = [name for name in names if name not in STEPS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown step(s) {', '.join(unknown)}; choose from {', '.join(STEPS)}"
        )
    return tuple(step for step in STEPS if step in names)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description="Benchmark a running OCI / Docker v2 registry (MB = 10^6 bytes).",
    )
    parser.add_argument(
        "--url", required=True, help="registry base URL, e.g. http://127.0.0.1:8000"
    )
    parser.add_argument("--repo", required=True, help="repository to push to, e.g. alice/bench")
    parser.add_argument("--user", help="user name for HTTP Basic and token requests")
    parser.add_argument("--password", help="password or access token")
    parser.add_argument("--size", type=parse_size, default=GiB, help="big blob size (1GiB)")
    parser.add_argument("--chunk", type=parse_size, default=16 * MiB, help="PATCH size (16MiB)")
    parser.add_argument("--parallel", type=int, default=16, help="simultaneous pulls (16)")
    parser.add_argument("--requests", type=int, default=200, help="manifest HEADs and GETs (200)")
    parser.add_argument(
        "--pid",
        type=pid_list,
        action="extend",
        default=[],
        help="server pid(s) to watch, with their children (repeat or comma-separate)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write every figure as JSON here")
    parser.add_argument("--seed", type=int, default=0, help="vary the blob contents (0)")
    parser.add_argument(
        "--steps",
        type=step_list,
        default=STEPS,
        help=f"comma-separated steps to run, from {','.join(STEPS)} (default: all)",
    )
    parser.add_argument(
        "--skip-big", action="store_true", help="only the manifest latencies (--steps manifest)"
    )
    args = parser.parse_args(argv)
    if args.skip_big:
        args.steps = ("manifest",)
    if args.user is None and args.password is not None:
        parser.error("--password needs --user")
    if args.parallel < 1 or args.requests < 1:
        parser.error("--parallel and --requests must be at least 1")
    if not 0 <= args.seed < 1 << 22:
        parser.error("--seed must be between 0 and 4194303")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON; 0 on success, 1 on a failure."""
    args = parse_args(argv)
    results: dict = {}
    error = None
    try:
        run(args, results)
    except BenchError as exc:
        error = str(exc)
    except KeyboardInterrupt:
        error = "interrupted"
    print("\n".join(report(results, args)))
    if args.json:
        document = {"ok": error is None, "error": error, "env": environment(args), **results}
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2)
            fh.write("\n")
    if error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
