"""Manifest latency and throughput, and how they hold up at scale: forge vs Distribution.

Starts our server and CNCF Distribution 2.8 side by side (bench/side_by_side.py's
machinery), pushes the same content to both, then measures, alternating ours and theirs:

- latency: p50/p95/p99 of GET /v2/ and of manifest HEAD and GET, by tag and by digest,
  N requests each over one keep-alive connection; ours with Basic, with a Bearer token
  from /v2/token and anonymously, Distribution without auth;
- throughput: wrk against a manifest GET by tag (and a 4 KiB blob GET), with a GET /v2/
  probe on a new connection every 200 ms while wrk runs;
- listings: tags/list, _catalog, and (ours only) the REST API and web pages that list
  packages and versions.

With --tags N (N > 1) or --repos M both registries are first filled over HTTP: one image
(alice/big) with N tags, each its own small manifest (its own config blob, one shared
layer), and M more repositories (alice/rNNNNN) with one tag each, the layer mounted from
alice/big. The fill rate is reported, and the figures above are taken for the first and
the last tag pushed. With --db postgres every figure of ours is taken twice: before and
after ANALYZE.

    .venv/bin/python bench/manifest_bench.py
    .venv/bin/python bench/manifest_bench.py --tags 10000 --repos 2000 --db postgres \
        --json /tmp/big.json
    .venv/bin/python bench/manifest_bench.py --compare /tmp/small.json /tmp/big.json

Standard library, plus psycopg and redis from the project venv for --db postgres and
--cache redis; needs wrk and docker-registry. See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import http.client
import json
import math
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import registry_bench as rb
import side_by_side as sbs

WRK = "/usr/bin/wrk"
SMALL_REPO = "alice/bench"  # the tiny image of registry_bench, and the 4 KiB blob
SMALL_TAG = "bench"
BIG_REPO = "alice/big"  # the image with --tags tags
REPO_PREFIX = "alice/r"  # the --repos repositories, alice/r00000 ...
BLOB_SIZE = 4 * rb.KiB
WARMUP = 5  # untimed requests before each latency series
PROBE_INTERVAL = 0.2
TIMEOUT = 120.0
API_PAGE = 50  # REST_FRAMEWORK PAGE_SIZE
WEB_PAGE = 20  # IMAGES_PER_PAGE and VERSIONS_PER_PAGE of the web pages
LIST_PAGE = 100  # n= of tags/list and _catalog
SUMMED = ("errors", "non_2xx", "socket_errors", "timeouts", "failures")
KEPT = ("status", "exit")  # taken from the first round, not medians


class BenchError(Exception):
    """A request did not get the answer it should have."""


# --- statistics -----------------------------------------------------------------------------


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))]


def stats_ms(samples: list[float]) -> dict:
    """p50, p95, p99, max and mean of durations in seconds, as milliseconds."""
    if not samples:
        return {"count": 0}
    ms = sorted(s * 1000 for s in samples)
    return {
        "count": len(ms),
        "p50": round(percentile(ms, 50), 3),
        "p95": round(percentile(ms, 95), 3),
        "p99": round(percentile(ms, 99), 3),
        "max": round(ms[-1], 3),
        "mean": round(statistics.fmean(ms), 3),
    }


def is_number(value) -> bool:
    """A figure (not None, not a bool, not a word)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def merge_rounds(figures: list[dict]) -> dict:
    """One figure dict from every round's: medians of numbers (sums of error counts); the
    other fields from the first round.
    """
    if len(figures) == 1:
        return figures[0]
    merged = dict(figures[0])
    for key, value in figures[0].items():
        values = [f.get(key) for f in figures if is_number(f.get(key))]
        if is_number(value) and values and key not in KEPT:
            merged[key] = sum(values) if key in SUMMED else round(statistics.median(values), 3)
    merged["rounds"] = len(figures)
    return merged


# --- a keep-alive HTTP client ---------------------------------------------------------------


class Http:
    """One keep-alive connection to a server; reconnects (and counts it) when it was closed."""

    def __init__(self, url: str, timeout: float = TIMEOUT):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None
        self.opened = 0

    def close(self) -> None:
        """Close the connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method: str, path: str, headers: dict | None = None, body=None):
        """Send one request and read the whole answer: (status, headers, body)."""
        for attempt in (1, 2):
            reused = self.conn is not None
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self.opened += 1
            try:
                self.conn.request(method, path, body, headers or {})
                resp = self.conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if reused and attempt == 1 and not isinstance(exc, TimeoutError):
                    continue  # the server closed an idle keep-alive connection
                raise BenchError(f"{method} {path}: {exc!r}") from exc
            if resp.will_close:
                self.close()
            return resp.status, resp.headers, data
        raise AssertionError("unreachable")


def once(url: str, path: str, headers: dict | None = None, method: str = "GET"):
    """One request on a connection of its own."""
    client = Http(url)
    try:
        return client.request(method, path, headers)
    finally:
        client.close()


def error_text(status: int, body: bytes) -> str:
    """The OCI error codes of an answer, else the start of its body."""
    try:
        return "; ".join(f"{e['code']}: {e.get('message')}" for e in json.loads(body)["errors"])
    except (ValueError, KeyError, TypeError):
        return f"{status} {body[:160].decode('utf-8', 'replace').strip()}"


# --- the servers and their credentials ------------------------------------------------------


def basic(user: str = sbs.USER, password: str = sbs.PASSWORD) -> str:
    """An Authorization: Basic value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bearer_token(server: dict, repo: str) -> tuple[str, float]:
    """A token from ours: realm and service from the 401 challenge of an anonymous
    GET /v2/, then GET realm?service=&scope=repository:<repo>:pull with Basic; the token
    and how long the token request took (s).
    """
    status, headers, _ = once(server["url"], "/v2/")
    scheme, params = rb.parse_challenge(headers.get("WWW-Authenticate", ""))
    if status != 401 or scheme != "bearer" or not params.get("realm"):
        raise BenchError(f"GET /v2/ anonymously: {status}, no Bearer challenge")
    query = urlencode({"service": params.get("service", ""), "scope": f"repository:{repo}:pull"})
    realm = urlsplit(params["realm"])
    started = time.perf_counter()
    status, _, body = once(server["url"], f"{realm.path}?{query}", {"Authorization": basic()})
    took = time.perf_counter() - started
    if status != 200:
        raise BenchError(f"token request: {error_text(status, body)}")
    data = json.loads(body)
    return data.get("token") or data["access_token"], took


def auth_modes(server: dict, repo: str) -> dict[str, dict]:
    """The ways a server is read: name -> headers."""
    if server["name"] != "ours":
        return {"none": {}}
    token, _ = bearer_token(server, repo)
    return {
        "basic": {"Authorization": basic()},
        "bearer": {"Authorization": f"Bearer {token}"},
        "anonymous": {},
    }


def forge_manage(stack: sbs.Stack, *args: str) -> str:
    """Run a manage.py command against our server's database and data dir; its stdout."""
    log = stack.root / "ours1" / "setup.log"
    cmd = [sbs.PYTHON, "manage.py", *args]
    return sbs.run_checked(cmd, stack.forge_env, f"manage.py {args[0]}", log)


def sign_in(server: dict) -> str:
    """A Cookie header of a session signed in as alice on the web pages."""
    client = Http(server["url"])
    try:
        status, headers, body = client.request("GET", "/login/")
        csrf_cookie = re.search(r"csrftoken=([^;]+)", headers.get("Set-Cookie", ""))
        field = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        if status != 200 or not csrf_cookie or not field:
            raise BenchError(f"GET /login/: {status}, no CSRF token")
        form = urlencode(
            {
                "username": sbs.USER,
                "password": sbs.PASSWORD,
                "csrfmiddlewaretoken": field.group(1).decode(),
            }
        )
        status, headers, body = client.request(
            "POST",
            "/login/",
            {
                "Cookie": f"csrftoken={csrf_cookie.group(1)}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Referer": server["url"] + "/login/",
            },
            form.encode(),
        )
        session = re.search(r"sessionid=([^;]+)", ",".join(headers.get_all("Set-Cookie") or []))
        if status != 302 or not session:
            raise BenchError(f"POST /login/: {status}, no session")
        return f"csrftoken={csrf_cookie.group(1)}; sessionid={session.group(1)}"
    finally:
        client.close()


# --- what is pushed -------------------------------------------------------------------------


class Content:
    """The images both registries get: deterministic, so any manifest can be rebuilt."""

    def __init__(self, tags: int, repos: int):
        self.tags, self.repos = tags, repos
        self.filled = tags > 1 or repos > 0
        config, self.layer = rb.tiny_image()
        self.diff_id = json.loads(config)["rootfs"]["diff_ids"][0]
        self.layer_digest = rb.sha256_digest(self.layer)
        self.blob = rb.make_base(7)[:BLOB_SIZE].tobytes()  # the 4 KiB blob of the blob GETs
        self.blob_digest = rb.sha256_digest(self.blob)
        width = max(5, len(str(max(tags, repos) - 1)))
        self.tag_names = [f"t{i:0{width}d}" for i in range(tags)]
        self.repo_names = [f"{REPO_PREFIX}{j:0{width}d}" for j in range(repos)]
        self.small_body = b""  # registry_bench's tiny manifest, once pushed

    def config(self, item: str) -> bytes:
        """The config blob of one tag or repository: its own digest, the shared layer."""
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"bench.item": item}},
            "rootfs": {"type": "layers", "diff_ids": [self.diff_id]},
        }
        return json.dumps(config, sort_keys=True).encode()

    def manifest(self, item: str) -> bytes:
        """The OCI manifest of one tag or repository."""
        config = self.config(item)
        manifest = {
            "schemaVersion": 2,
            "mediaType": rb.OCI_MANIFEST,
            "config": {
                "mediaType": rb.OCI_CONFIG,
                "digest": rb.sha256_digest(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": rb.OCI_LAYER, "digest": self.layer_digest, "size": len(self.layer)}
            ],
        }
        return json.dumps(manifest, indent=2).encode()

    def targets(self) -> list[dict]:
        """What the manifest latencies are taken of: the tiny image, and with a fill the
        first and the last tag pushed into the big image.
        """
        found = [self.target("bench", SMALL_REPO, SMALL_TAG, self.small_body)]
        if self.filled:
            for label, tag in (("first tag", self.tag_names[0]), ("last tag", self.tag_names[-1])):
                found.append(self.target(label, BIG_REPO, tag, self.manifest(f"{BIG_REPO}:{tag}")))
        return found

    @staticmethod
    def target(label: str, repo: str, tag: str, body: bytes) -> dict:
        digest = rb.sha256_digest(body)
        return {"label": label, "repo": repo, "tag": tag, "digest": digest, "body": body}

    def listed_repos(self) -> list[str]:
        """Every repository name, sorted, as _catalog should list them."""
        return sorted([SMALL_REPO, *([BIG_REPO] if self.filled else []), *self.repo_names])


class Pusher:
    """Pushes over one keep-alive connection, as ours (Basic) or Distribution (no auth)."""

    def __init__(self, server: dict):
        self.client = Http(server["url"])
        self.auth = {"Authorization": basic()} if server["name"] == "ours" else {}
        self.requests = 0

    def send(self, method: str, path: str, headers: dict, body, wanted: int, what: str):
        """One request that must answer wanted; its headers."""
        self.requests += 1
        status, reply, data = self.client.request(method, path, {**self.auth, **headers}, body)
        if status != wanted:
            raise BenchError(f"{what}: {status}: {error_text(status, data)}")
        return reply

    def blob(self, repo: str, data: bytes, mount_from: str | None = None) -> None:
        """POST (a mount when mount_from is given), then PUT ?digest= unless mounted."""
        digest = rb.sha256_digest(data)
        path = f"/v2/{repo}/blobs/uploads/"
        if mount_from:
            path += "?" + urlencode({"mount": digest, "from": mount_from})
            status_ok = (201, 202)
        else:
            status_ok = (202,)
        self.requests += 1
        status, reply, body = self.client.request("POST", path, self.auth)
        if status not in status_ok:
            raise BenchError(f"POST {path}: {status}: {error_text(status, body)}")
        if status == 201:
            return
        loc = urlsplit(reply.get("Location", ""))
        target = (
            loc.path + "?" + "&".join(x for x in (loc.query, urlencode({"digest": digest})) if x)
        )
        headers = {"Content-Type": rb.OCTETS, "Content-Length": str(len(data))}
        self.send("PUT", target, headers, data, 201, f"PUT blob into {repo}")

    def manifest(self, repo: str, tag: str, body: bytes) -> float:
        """PUT a manifest; seconds it took."""
        headers = {"Content-Type": rb.OCI_MANIFEST, "Content-Length": str(len(body))}
        started = time.perf_counter()
        self.send("PUT", f"/v2/{repo}/manifests/{tag}", headers, body, 201, f"PUT {repo}:{tag}")
        return time.perf_counter() - started


def push_small_image(server: dict, content: Content) -> None:
    """registry_bench's tiny image as alice/bench:bench, and the 4 KiB blob beside it."""
    reg = rb.Registry(server["url"], SMALL_REPO, *_credentials(server))
    body, _ = rb.push_manifest(reg, SMALL_TAG)
    content.small_body = body
    pusher = Pusher(server)
    pusher.blob(SMALL_REPO, content.blob)
    pusher.client.close()
    reg.close()


def _credentials(server: dict) -> tuple:
    return (sbs.USER, sbs.PASSWORD) if server["name"] == "ours" else (None, None)


# --- the fill -------------------------------------------------------------------------------


def fill_phase(server: dict, content: Content, kind: str, threads: int) -> dict:
    """Push every tag (kind 'tags') or every repository ('repos') with `threads` threads,
    each on its own keep-alive connection; the rates and manifest PUT times.
    """
    items = content.tag_names if kind == "tags" else content.repo_names
    lock = threading.Lock()
    queue = iter(range(len(items)))
    puts: list[tuple[int, float]] = []  # (item index, seconds) of every manifest PUT
    errors: dict[str, int] = {}
    examples: list[str] = []
    failed: list[str] = []
    counts = {"requests": 0}
    done = [0]
    step = max(1, len(items) // 10)

    def work() -> None:
        pusher = Pusher(server)
        while True:
            with lock:
                index = next(queue, None)
            if index is None:
                break
            name = items[index]
            for attempt in (1, 2, 3):
                try:
                    if kind == "tags":
                        repo, tag, mount = BIG_REPO, name, None
                    else:
                        repo, tag, mount = name, "latest", BIG_REPO
                    if mount:
                        pusher.blob(repo, content.layer, mount_from=mount)
                    pusher.blob(repo, content.config(f"{repo}:{tag}"))
                    took = pusher.manifest(repo, tag, content.manifest(f"{repo}:{tag}"))
                    with lock:
                        puts.append((index, took))
                        done[0] += 1
                        if done[0] % step == 0:
                            sbs.progress(f"{server['name']} fill {kind}: {done[0]}/{len(items)}")
                    break
                except BenchError as exc:
                    pusher.client.close()
                    status = re.search(r": (\d{3}): ", str(exc))
                    key = status.group(1) if status else str(exc).rsplit(": ", 1)[-1][:80]
                    with lock:
                        errors[key] = errors.get(key, 0) + 1
                        if len(examples) < 5:
                            examples.append(str(exc)[:300])
                        if attempt == 3:
                            failed.append(name)
        pusher.client.close()
        with lock:
            counts["requests"] += pusher.requests

    watch = CpuWatch(server).__enter__()
    started = time.perf_counter()
    pool = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - started
    watch.__exit__()
    # the server's own processes and, with PostgreSQL, its database backends
    cpu_server = watch.figures["server_cpu_s"] + watch.figures["db_cpu_s"]
    puts.sort()  # in push order
    window = max(20, min(1000, len(puts) // 10))
    first = [t for _, t in puts[:window]]
    last = [t for _, t in puts[-window:]]
    return {
        "kind": kind,
        "items": len(items),
        "pushed": len(puts),
        "failures": len(failed),
        "failed_items": failed[:20],
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "error_examples": examples,
        "seconds": round(wall, 2),
        "manifest_puts_per_s": round(len(puts) / wall, 1),
        "requests": counts["requests"],
        "requests_per_s": round(counts["requests"] / wall, 1),
        "server_cpu_s": round(cpu_server, 2),
        "server_cpu_ms_per_item": round(cpu_server * 1000 / max(1, len(puts)), 2),
        "db_cpu_s": watch.figures["db_cpu_s"],
        "client_cpu_s": watch.figures["client_cpu_s"],
        "other_cpu_pct": watch.figures["other_cpu_pct"],
        "window": window,
        "put_first": stats_ms(first),
        "put_last": stats_ms(last),
        "put_all": stats_ms([t for _, t in puts]),
    }


def fill(server: dict, content: Content, args) -> dict:
    """The layer into alice/big, then every tag, then every repository."""
    threads = args.fill_threads
    pusher = Pusher(server)
    pusher.blob(BIG_REPO, content.layer)
    pusher.client.close()
    result = {}
    for kind in ("tags", "repos"):
        if (content.tags if kind == "tags" else content.repos) > 0:
            sbs.progress(f"{server['name']}: filling {kind} with {threads} threads")
            wait_quiet(args, server, f"fill {kind}")
            result[kind] = fill_phase(server, content, kind, threads)
    return result


# --- latency --------------------------------------------------------------------------------


def series(client: Http, method: str, path: str, headers: dict, n: int, check) -> dict:
    """WARMUP untimed, then n timed requests on the client's connection; their stats.

    check(status, headers, body) returns None when the answer is right, else what is wrong.
    """
    samples, errors, first_error = [], 0, None
    opened = client.opened
    for i in range(WARMUP + n):
        started = time.perf_counter()
        try:
            status, reply, body = client.request(method, path, headers)
            problem = check(status, reply, body)
        except BenchError as exc:
            status, problem = None, str(exc)
        took = time.perf_counter() - started
        if problem:
            errors += 1
            first_error = first_error or problem
        elif i >= WARMUP:
            samples.append(took)
    result = stats_ms(samples)
    result.update(errors=errors, reconnects=client.opened - opened - (opened == 0))
    if first_error:
        result["first_error"] = first_error
    result["status"] = status
    return result


def check_status(wanted: int):
    def check(status, reply, body):
        return None if status == wanted else error_text(status, body)

    return check


def check_manifest(target: dict, method: str):
    def check(status, reply, body):
        if status != 200:
            return error_text(status, body)
        if reply.get("Docker-Content-Digest") not in (None, target["digest"]):
            return f"digest {reply.get('Docker-Content-Digest')}"
        if method == "GET" and body != target["body"]:
            return "body differs from the manifest pushed"
        return None

    return check


MANIFEST_ROWS = (
    ("HEAD", "tag", "HEAD manifest by tag"),
    ("GET", "tag", "GET manifest by tag"),
    ("HEAD", "digest", "HEAD manifest by digest"),
    ("GET", "digest", "GET manifest by digest"),
)


def latency(server: dict, targets: list[dict], n: int) -> dict:
    """Every latency series of one server: key 'mode|target|request' -> stats."""
    result = {}
    accept = {"Accept": rb.OCI_MANIFEST}
    main = targets[-1]["repo"]
    for mode, auth in auth_modes(server, main).items():
        client = Http(server["url"])
        # Anonymous GET /v2/ on ours is the 401 that starts the token dance.
        ping = 401 if mode == "anonymous" else 200
        result[f"{mode}||GET /v2/"] = series(client, "GET", "/v2/", auth, n, check_status(ping))
        if mode == "basic":
            token_path = token_request_path(server, main)
            result[f"{mode}||GET /v2/token"] = series(
                client, "GET", token_path, auth, n, check_status(200)
            )
        for target in targets:
            if mode == "bearer" and target["repo"] != main:
                token, _ = bearer_token(server, target["repo"])
                headers = {"Authorization": f"Bearer {token}", **accept}
            else:
                headers = {**auth, **accept}
            for method, by, label in MANIFEST_ROWS:
                ref = target["tag"] if by == "tag" else target["digest"]
                path = f"/v2/{target['repo']}/manifests/{ref}"
                check = check_manifest(target, method)
                result[f"{mode}|{target['label']}|{label}"] = series(
                    client, method, path, headers, n, check
                )
        client.close()
    return result


def token_request_path(server: dict, repo: str) -> str:
    """The path and query of a token request for repository:<repo>:pull."""
    _, headers, _ = once(server["url"], "/v2/")
    _, params = rb.parse_challenge(headers.get("WWW-Authenticate", ""))
    query = urlencode({"service": params.get("service", ""), "scope": f"repository:{repo}:pull"})
    return f"{urlsplit(params['realm']).path}?{query}"


# --- throughput (wrk) and the probe ---------------------------------------------------------

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def wrk_ms(text: str) -> float | None:
    """'4.80ms' -> 4.8."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    return round(float(match.group(1)) * _UNIT_MS[match.group(2)], 3) if match else None


def parse_wrk(out: str) -> dict:
    """Requests/s, latency percentiles and errors from wrk --latency's output."""
    result: dict = {"non_2xx": 0, "socket_errors": 0, "timeouts": 0}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", out):
        result["rps"] = float(m.group(1))
    for pct in ("50", "75", "90", "99"):
        if m := re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M):
            result[f"p{pct}"] = wrk_ms(m.group(1))
    if m := re.search(r"(\d+) requests in ([\d.]+\w+)", out):
        result["requests"] = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        connect, read, write, timeout = map(int, m.groups())
        result.update(socket_errors=connect + read + write, timeouts=timeout)
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        result["non_2xx"] = int(m.group(1))
    return result


class Probe:
    """GET /v2/ on a new connection every PROBE_INTERVAL s, in a thread, until stopped."""

    def __init__(self, server: dict):
        self.server = server
        self.headers = {"Authorization": basic()} if server["name"] == "ours" else {}
        self.samples: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                status, _, body = once(self.server["url"], "/v2/", self.headers)
                if status == 200:
                    self.samples.append(time.perf_counter() - started)
                else:
                    self.failures.append(error_text(status, body))
            except BenchError as exc:
                self.failures.append(str(exc))
            due += PROBE_INTERVAL
            self._stop.wait(max(0.0, due - time.monotonic()))
            due = max(due, time.monotonic() - PROBE_INTERVAL)  # no bursts after a slow probe

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        figures = stats_ms(self.samples)
        figures["failures"] = len(self.failures)
        if self.failures:
            figures["first_failure"] = self.failures[0][:300]
        return figures


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes and their live descendants have used so far
    (gunicorn's workers are children of its master).
    """
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in rb.process_tree(pids):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError, IndexError):
            continue
    return total / tick


def machine_busy() -> float:
    """CPU seconds all CPUs have spent not idle since boot (/proc/stat)."""
    with open("/proc/stat", encoding="ascii") as fh:
        fields = [int(x) for x in fh.readline().split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


QUIET_WAITS: list[dict] = []  # every wait_quiet of this run


def wait_quiet(args, server: dict, what: str) -> None:
    """Wait (at most --quiet-wait s) until other processes use under --quiet-below % of
    the CPUs, measured over 1 s at a time; noted in QUIET_WAITS.
    """
    started = time.monotonic()
    while True:
        with CpuWatch(server) as watch:
            time.sleep(1.0)
        other = watch.figures["other_cpu_pct"]
        waited = time.monotonic() - started
        if other < args.quiet_below or waited >= args.quiet_wait:
            break
    QUIET_WAITS.append(
        {
            "server": server["name"],
            "what": what,
            "waited_s": round(waited, 1),
            "other_cpu_pct": other,
            "gave_up": other >= args.quiet_below,
        }
    )
    if waited > 2:
        sbs.progress(f"waited {waited:.0f} s for a quieter machine (other CPU now {other:.0f} %)")


def quiet_line(args) -> str:
    """How long the run waited for other processes to quieten, and how often in vain."""
    waits = [w["waited_s"] for w in QUIET_WAITS]
    vain = [w for w in QUIET_WAITS if w["gave_up"]]
    text = (
        f"quiet machine: before each measurement waited until other processes used < "
        f"{args.quiet_below:g} % of the CPUs (at most {args.quiet_wait:g} s): "
        f"{len(waits)} waits, {sum(waits):.0f} s in all"
    )
    if vain:
        levels = ", ".join(f"{w['server']} {w['what']} {w['other_cpu_pct']:.0f}%" for w in vain)
        text += f"; started anyway {len(vain)} time(s): {levels}"
    return text


def backend_cpu(database: str | None) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to our database (the
    server's persistent connections), by pid; {} without a database.
    """
    if not database:
        return {}
    import psycopg

    with psycopg.connect(database, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return {pid: cpu_seconds_of(pid) for (pid,) in rows}


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


class CpuWatch:
    """CPU time while something runs: the server's (its processes, and with PostgreSQL the
    backends of its database), this script's and its children's (wrk), and everything
    else's on the machine ('other': e.g. someone's test suite).
    """

    def __init__(self, server: dict):
        self.pids = server["pids"]
        self.database = server.get("database")

    def _now(self) -> tuple:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (
            time.perf_counter(),
            machine_busy(),
            cpu_seconds(self.pids),
            time.process_time(),
            children.ru_utime + children.ru_stime,
        )

    def __enter__(self) -> CpuWatch:
        self.backends = backend_cpu(self.database)
        self.start = self._now()
        return self

    def __exit__(self, *exc) -> None:
        end = self._now()
        backends = backend_cpu(self.database)
        # A backend that came and went in between is missed: the server keeps its
        # connections (CONN_MAX_AGE), so there are few.
        database = sum(max(0.0, cpu - self.backends.get(pid, 0.0)) for pid, cpu in backends.items())
        wall, busy, server, own, children = (b - a for a, b in zip(self.start, end, strict=True))
        other = max(0.0, busy - server - database - own - children)
        self.figures = {
            "server_cpu_s": round(server, 2),
            "db_cpu_s": round(database, 2),
            "client_cpu_s": round(own, 2),
            "wrk_cpu_s": round(children, 2),
            "other_cpu_s": round(other, 2),
            # of all the machine's CPU time in that wall time
            "other_cpu_pct": round(100 * other / max(wall * (os.cpu_count() or 1), 1e-9), 1),
        }


def access_statuses(log: str | None, start: int) -> dict:
    """HTTP statuses gunicorn's access log recorded from byte start on: {'200': n, ...}."""
    if not log:
        return {}
    counts: dict[str, int] = {}
    with open(log, "rb") as fh:
        fh.seek(start)
        for match in re.finditer(rb'HTTP/[\d.]+" (\d{3}) ', fh.read()):
            code = match.group(1).decode()
            counts[code] = counts.get(code, 0) + 1
    return counts


def run_wrk(server: dict, path: str, conns: int, args, headers: dict, probe: bool) -> dict:
    """wrk -t2 -c conns against path (with a probe beside it); requests/s, latencies, errors."""
    cmd = [WRK, "-t2", f"-c{conns}", f"-d{args.duration}s", f"--timeout={args.wrk_timeout}s"]
    cmd.append("--latency")
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    cmd.append(server["url"] + path)
    log = server["logs"][0] if server["name"] == "ours" else None
    start = sbs.log_size(log) if log else 0
    prober = Probe(server) if probe else None
    if prober:
        prober.__enter__()
    try:
        with CpuWatch(server) as watch:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 120)
    finally:
        if prober:
            prober.__exit__()
    result = parse_wrk(proc.stdout)
    result.update(watch.figures)
    if result.get("requests"):
        cpu = watch.figures["server_cpu_s"] + watch.figures["db_cpu_s"]
        result["cpu_ms_per_request"] = round(cpu * 1000 / result["requests"], 3)
        db = watch.figures["db_cpu_s"]
        result["db_cpu_ms_per_request"] = round(db * 1000 / result["requests"], 3)
    shown = [part if "Authorization" not in part else "Authorization: ..." for part in cmd]
    result.update(command=shlex.join(shown), exit=proc.returncode)
    if proc.returncode != 0 or "rps" not in result:
        result["wrk_output"] = (proc.stdout + proc.stderr)[-2000:]
    if prober:
        result["probe"] = prober.summary()
    if log:
        time.sleep(0.3)  # the last lines of the access log
        result["server_statuses"] = access_statuses(log, start)
    return result


def wrk_headers(server: dict, accept: bool = True) -> dict:
    """What every wrk request carries: Basic for ours, the OCI Accept for manifests."""
    headers = {"Authorization": basic()} if server["name"] == "ours" else {}
    if accept:
        headers["Accept"] = rb.OCI_MANIFEST
    return headers


def check_blob(server: dict, content: Content) -> str | None:
    """None if GET of the 4 KiB blob answers 200 with its bytes, else what it answers."""
    path = f"/v2/{SMALL_REPO}/blobs/{content.blob_digest}"
    status, headers, body = once(server["url"], path, wrk_headers(server, accept=False))
    if status != 200 or body != content.blob:
        where = headers.get("Location", "")
        return f"GET blob answered {status} {where} ({len(body)} bytes)"
    return None


# --- listings -------------------------------------------------------------------------------


def listing_rows(server: dict, content: Content, extra: dict) -> list[tuple]:
    """(label, path, headers, check) of every listing of one server."""
    big = BIG_REPO if content.filled else SMALL_REPO
    tags = content.tag_names if content.filled else [SMALL_TAG]
    repos = content.listed_repos()
    v2 = {"Authorization": basic()} if server["name"] == "ours" else {}

    def names_check(key: str, wanted: list[str]):
        def check(status, headers, body):
            if status != 200:
                return error_text(status, body)
            got = json.loads(body).get(key) or []
            if got == wanted:
                return None
            # Distribution 2.8 lists tags in directory order and ignores n= and last=:
            # timed as it is, with a note.
            notes = []
            if set(wanted) <= set(got) and len(got) > len(wanted):
                notes.append(f"ignores n=/last=: all {len(got)} {key}")
            if sorted(got) != got:
                notes.append("unsorted")
            if notes and set(wanted) <= set(got):
                return "note: " + ", ".join(notes)
            head = ", ".join(got[:2])
            return f"{len(got)} {key} ({head}...), expected {len(wanted)} ({wanted[0]}...)"

        return check

    def last_query(names: list[str]) -> str:
        if len(names) <= LIST_PAGE:
            return f"n={LIST_PAGE}"
        return urlencode({"n": LIST_PAGE, "last": names[-LIST_PAGE - 1]})

    rows = [
        ("tags/list, all tags", f"/v2/{big}/tags/list", v2, names_check("tags", tags)),
        (
            "tags/list first page (n=100)",
            f"/v2/{big}/tags/list?n={LIST_PAGE}",
            v2,
            names_check("tags", tags[:LIST_PAGE]),
        ),
        (
            "tags/list last page (n=100&last=)",
            f"/v2/{big}/tags/list?{last_query(tags)}",
            v2,
            names_check("tags", tags[-LIST_PAGE:] if len(tags) > LIST_PAGE else tags),
        ),
        (
            "_catalog first page (n=100)",
            f"/v2/_catalog?n={LIST_PAGE}",
            v2,
            names_check("repositories", repos[:LIST_PAGE]),
        ),
        (
            "_catalog last page (n=100&last=)",
            f"/v2/_catalog?{last_query(repos)}",
            v2,
            names_check("repositories", repos[-LIST_PAGE:] if len(repos) > LIST_PAGE else repos),
        ),
    ]
    if server["name"] != "ours":
        return rows
    api_pages = max(1, math.ceil(len(repos) / API_PAGE))

    def api_check(page: int):
        def check(status, headers, body):
            if status != 200:
                return error_text(status, body)
            data = json.loads(body)
            wanted = min(API_PAGE, len(repos) - (page - 1) * API_PAGE)
            if data.get("count") != len(repos) or len(data.get("results", [])) != wanted:
                return f"count {data.get('count')}, {len(data.get('results', []))} results"
            return None

        return check

    def page_check(status, headers, body):
        return None if status == 200 else f"{status} ({len(body)} bytes)"

    for who, headers in (("anonymous", {}), ("token", extra["api"])):
        for name, page in (("first", 1), ("middle", (api_pages + 1) // 2), ("last", api_pages)):
            rows.append(
                (
                    f"API packages {name} page, {who}",
                    f"/api/v1/packages/alice?type=container&page={page}",
                    headers,
                    api_check(page),
                )
            )
    owner_pages = max(1, math.ceil(len(repos) / WEB_PAGE))
    version_pages = max(1, math.ceil(len(tags) / WEB_PAGE))
    image = big.split("/", 1)[1]
    for who, headers in (("anonymous", {}), ("signed in", extra["web"])):
        for label, path in (
            ("owner page /alice/-/packages", "/alice/-/packages"),
            ("owner page, last page", f"/alice/-/packages?page={owner_pages}"),
            (
                "versions page of the image, first",
                f"/alice/-/packages/container/{image}/-/versions",
            ),
            (
                "versions page of the image, last page",
                f"/alice/-/packages/container/{image}/-/versions?page={version_pages}",
            ),
        ):
            rows.append((f"{label}, {who}", path, headers, page_check))
    return rows


def listings(server: dict, content: Content, extra: dict, repeat: int) -> dict:
    """Each listing `repeat` times over one keep-alive connection; key 'label' -> stats."""
    result = {}
    client = Http(server["url"])
    for label, path, headers, check in listing_rows(server, content, extra):
        samples, problems, sizes, notes = [], [], [], set()
        for _ in range(repeat):
            started = time.perf_counter()
            try:
                status, reply, body = client.request("GET", path, headers)
                problem = check(status, reply, body)
                sizes.append(len(body))
            except BenchError as exc:
                problem = str(exc)
            took = time.perf_counter() - started
            if problem and problem.startswith("note: "):
                notes.add(problem[6:])
                problem = None
            if problem:
                problems.append(problem)
            else:
                samples.append(took)
        figures = stats_ms(samples)
        figures.update(path=path, errors=len(problems), bytes=max(sizes, default=0))
        if notes:
            figures["note"] = "; ".join(sorted(notes))
        if problems:
            figures["first_error"] = problems[0][:300]
        result[label] = figures
    client.close()
    return result


# --- PostgreSQL -----------------------------------------------------------------------------


def planner_state(database: str) -> dict:
    """Whether the tables have planner statistics, and autovacuum's setting."""
    import psycopg

    with psycopg.connect(database, autocommit=True) as conn:
        autovacuum = conn.execute("SHOW autovacuum").fetchone()[0]
        stats = conn.execute(
            "SELECT count(DISTINCT tablename) FROM pg_stats WHERE schemaname = 'public'"
        ).fetchone()[0]
        analyzed = conn.execute(
            "SELECT count(*) FROM pg_stat_user_tables "
            "WHERE last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL"
        ).fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM pg_stat_user_tables").fetchone()[0]
    return {
        "autovacuum": autovacuum,
        "tables": tables,
        "tables_with_pg_stats": stats,
        "tables_analyzed": analyzed,
    }


def analyze(database: str) -> float:
    """ANALYZE the whole database; seconds it took."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return time.perf_counter() - started


# --- the report -----------------------------------------------------------------------------


def ms(value) -> str:
    """A millisecond figure in few characters."""
    if not is_number(value):
        return "-"
    if value >= 1000:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def ratio_words(ours, theirs, higher_is_better: bool) -> str:
    """'2.10x slower' / '1.30x faster' from two figures."""
    if not (is_number(ours) and is_number(theirs)) or not ours or not theirs:
        return ""
    ratio = ours / theirs
    if higher_is_better:
        return f"{ratio:.2f}x" + (" (faster)" if ratio >= 1 else f" ({1 / ratio:.2f}x slower)")
    return f"{ratio:.2f}x slower" if ratio >= 1 else f"{1 / ratio:.2f}x faster"


def cell3(fig: dict | None) -> str:
    """'p50/p95/p99' of a latency series, with its errors."""
    if not fig or not fig.get("count"):
        return f"ERR x{fig.get('errors')}" if fig else "-"
    text = f"{ms(fig['p50'])}/{ms(fig['p95'])}/{ms(fig['p99'])}"
    if fig.get("errors"):
        text += f" E{fig['errors']}"
    if fig.get("reconnects"):
        text += f" R{fig['reconnects']}"
    if fig.get("status") not in (None, 200):
        text = f"[{fig['status']}] " + text
    return text


def latency_lines(ours: dict, theirs: dict, targets: list[dict], n: int) -> list[str]:
    """The latency table: a row per request, a column per auth mode."""
    modes = ["basic", "bearer", "anonymous"]
    head = (
        f"{'request':<40} {'ours Basic':>22} {'ours Bearer':>22} {'ours anonymous':>22} "
        f"{'Distribution':>22}  p50 Basic vs Dist"
    )
    lines = [
        f"== latency, ms: p50/p95/p99 of {n} requests each over one keep-alive connection "
        f"(after {WARMUP} untimed); [401] = the answer timed was a 401; "
        "E<n> = wrong answers, R<n> = reconnects",
        head,
        "-" * len(head),
    ]
    keys = [("", "GET /v2/"), ("", "GET /v2/token")]
    for target in targets:
        keys += [(target["label"], label) for _, _, label in MANIFEST_ROWS]
    for label, request in keys:
        name = request if not label else f"{request}, {label}"
        if label:
            name += f" (:{target_tag(targets, label)})"
        figs = [ours.get(f"{mode}|{label}|{request}") for mode in modes]
        theirs_fig = theirs.get(f"none|{label}|{request}")
        if not any(figs) and not theirs_fig:
            continue
        words = ratio_words(
            (figs[0] or {}).get("p50"), (theirs_fig or {}).get("p50"), higher_is_better=False
        )
        cells = " ".join(f"{cell3(fig):>22}" for fig in [*figs, theirs_fig])
        lines.append(f"{name:<40} {cells}  {words}".rstrip())
    return lines


def background_line(ours: dict, theirs: dict) -> str:
    """What other processes took of the CPUs while the latency series ran."""
    a = (ours.get("cpu") or {}).get("latency") or {}
    b = (theirs.get("cpu") or {}).get("latency") or {}
    return (
        f"other processes' CPU during the latency series (% of all CPUs): ours "
        f"{a.get('other_cpu_pct', '-')}, Distribution {b.get('other_cpu_pct', '-')}"
    )


def target_tag(targets: list[dict], label: str) -> str:
    return next(t["tag"] for t in targets if t["label"] == label)


def wrk_cell(fig: dict | None) -> str:
    """'req/s p50 p99 errors CPU' of one wrk run."""
    if not fig:
        return f"{'-':>9} {'':>7} {'':>7} {'':>6} {'':>5} {'':>4}"
    if "rps" not in fig:
        return f"{'FAILED':>9} {'':>7} {'':>7} {'':>6} {'':>5} {'':>4}"
    errs = fig.get("non_2xx", 0) + fig.get("socket_errors", 0) + fig.get("timeouts", 0)
    return (
        f"{fig['rps']:>9.0f} {ms(fig.get('p50')):>7} {ms(fig.get('p99')):>7} {errs:>6} "
        f"{ms(fig.get('cpu_ms_per_request')):>5} {fig.get('other_cpu_pct', 0):>4.0f}"
    )


def throughput_lines(ours: dict, theirs: dict, keys: list[tuple[str, str]], args) -> list[str]:
    """The wrk table and the probe table."""
    head = (
        f"{'target':<26} {'conns':>5}  {'ours r/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'errs':>6}"
        f" {'CPU':>5} {'bg%':>4}  {'Dist r/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'errs':>6}"
        f" {'CPU':>5} {'bg%':>4}"
        "  ours/Dist req/s"
    )
    lines = [
        f"== throughput: wrk -t2 -c<conns> -d{args.duration}s --timeout={args.wrk_timeout}s "
        "--latency; ours with Basic; manifests with Accept: OCI manifest; errs = non-2xx + "
        "socket errors + timeouts; CPU = server CPU ms per request (its processes, plus "
        "with PostgreSQL its database backends); bg% = CPU time of other processes on the "
        "machine (not the servers and their database, wrk or this script), in % of all CPUs",
        head,
        "-" * len(head),
    ]
    for key, label in keys:
        conns = key.rsplit("|c", 1)[1]
        a, b = ours.get(key), theirs.get(key)
        words = ratio_words((a or {}).get("rps"), (b or {}).get("rps"), higher_is_better=True)
        lines.append(f"{label:<26} {conns:>5}  {wrk_cell(a)}  {wrk_cell(b)}  {words}".rstrip())
    head = (
        f"{'during wrk on':<26} {'conns':>5}  {'ours p50':>9} {'max':>8} {'n':>4} {'fail':>4}"
        f"  {'Dist p50':>9} {'max':>8} {'n':>4} {'fail':>4}"
    )
    lines += [
        "",
        f"== probe under load: GET /v2/ on a new connection every {PROBE_INTERVAL * 1000:.0f} ms "
        "while wrk runs (ours with Basic), ms from connect to the whole answer",
        head,
        "-" * len(head),
    ]
    for key, label in keys:
        conns = key.rsplit("|c", 1)[1]
        if not any((side.get(key) or {}).get("probe") for side in (ours, theirs)):
            continue
        cells = []
        for fig in ((ours.get(key) or {}).get("probe"), (theirs.get(key) or {}).get("probe")):
            if not fig:
                cells.append(f"{'-':>9} {'':>8} {'':>4} {'':>4}")
                continue
            cells.append(
                f"{ms(fig.get('p50')):>9} {ms(fig.get('max')):>8} {fig.get('count', 0):>4} "
                f"{fig.get('failures', 0):>4}"
            )
        lines.append(f"{label:<26} {conns:>5}  {cells[0]}  {cells[1]}")
    odd = []
    for key, label in keys:
        statuses = (ours.get(key) or {}).get("server_statuses") or {}
        if set(statuses) - {"200"}:
            odd.append(f"  {label} -c{key.rsplit('|c', 1)[1]}: {statuses}")
    if odd:
        lines += ["ours' access log showed other statuses than 200 during wrk:", *odd]
    return lines


def fill_lines(fills: dict, content: Content, threads: int) -> list[str]:
    """The fill table: rates and manifest PUT times at the start and the end."""
    lines = [
        f"== fill: {content.tags} tags into {BIG_REPO} (each: POST + PUT config, PUT manifest), "
        f"then {content.repos} repositories {REPO_PREFIX}NNNNN:latest (each: POST ?mount= "
        f"layer, POST + PUT config, PUT manifest); {threads} threads, keep-alive",
    ]
    head = (
        f"{'phase':<6} {'server':<13} {'items':>6} {'failed':>6} {'wall s':>7} "
        f"{'PUT/s':>7} {'req/s':>7}  {'PUT p50 first':>13} {'PUT p50 last':>12} "
        f"{'p95 first':>9} {'p95 last':>9} {'errors':>6}  {'srv CPU ms/item':>15} "
        f"{'client CPU s':>12} {'bg%':>4}"
    )
    lines += [head, "-" * len(head)]
    for kind in ("tags", "repos"):
        for name in ("ours", "theirs"):
            fig = (fills.get(name) or {}).get(kind)
            if not fig:
                continue
            lines.append(
                f"{kind:<6} {'ours' if name == 'ours' else 'Distribution':<13} "
                f"{fig['items']:>6} {fig['failures']:>6} {fig['seconds']:>7.1f} "
                f"{fig['manifest_puts_per_s']:>7.1f} {fig['requests_per_s']:>7.1f}  "
                f"{ms(fig['put_first'].get('p50')):>13} {ms(fig['put_last'].get('p50')):>12} "
                f"{ms(fig['put_first'].get('p95')):>9} {ms(fig['put_last'].get('p95')):>9} "
                f"{fig['errors']:>6}  {fig['server_cpu_ms_per_item']:>15.1f} "
                f"{fig['client_cpu_s']:>12.1f} {fig.get('other_cpu_pct', 0):>4.0f}"
            )
    window = next(
        (f[k]["window"] for f in fills.values() if f for k in ("tags", "repos") if k in f), 0
    )
    lines.append(
        f"PUT/s = manifest PUTs (tags or repositories) per second of wall time; first/last = "
        f"the first and last {window} manifest PUTs of the phase, in push order, ms; srv CPU = "
        "the server's CPU time (all its processes, and its PostgreSQL backends) per item "
        "pushed, its blob requests included; "
        "client CPU = this script's; bg% = other processes' CPU time in % of all CPUs"
    )
    for name, fig in fills.items():
        for kind, phase in (fig or {}).items():
            if phase["errors"]:
                lines.append(
                    f"{name} {kind} errors (retried, 3 tries): {phase['error_kinds']}; e.g. "
                    f"{phase['error_examples'][0]}"
                )
    return lines


def listing_sizes(content: Content) -> str:
    """How big the lists are and which pages are asked for."""
    tags = len(content.tag_names) if content.filled else 1
    repos = len(content.listed_repos())
    api = max(1, math.ceil(repos / API_PAGE))
    image = BIG_REPO if content.filled else SMALL_REPO
    return (
        f"{image}: {tags} tag(s); {repos} repositories = packages; API pages 1, "
        f"{(api + 1) // 2}, {api} of {api} ({API_PAGE} a page); owner pages 1 and "
        f"{max(1, math.ceil(repos / WEB_PAGE))}, versions pages 1 and "
        f"{max(1, math.ceil(tags / WEB_PAGE))} ({WEB_PAGE} a page)"
    )


def listing_lines(ours: dict, theirs: dict, repeat: int, sizes: str) -> list[str]:
    """The listings table: p50 (max) of each, ours and Distribution."""
    head = (
        f"{'listing':<58} {'ours p50':>9} {'max':>8}  {'Dist p50':>9} {'max':>8}  "
        f"{'ours/Dist':<18} check"
    )
    lines = [
        f"== listings, ms: p50 and max of {repeat} requests over one keep-alive connection "
        "(/v2 of ours with Basic; API token = an access token of alice)",
        sizes,
        head,
        "-" * len(head),
    ]
    for label, fig in ours.items():
        other = theirs.get(label)
        words = ratio_words(fig.get("p50"), (other or {}).get("p50"), higher_is_better=False)
        problems = "; ".join(
            f"{who}: {f['first_error'] if f.get('errors') else f['note']}"
            for who, f in (("ours", fig), ("Dist", other))
            if f and (f.get("errors") or f.get("note"))
        )
        lines.append(
            f"{label:<58} {ms(fig.get('p50')):>9} {ms(fig.get('max')):>8}  "
            f"{ms((other or {}).get('p50')):>9} {ms((other or {}).get('max')):>8}  "
            f"{words:<18} {problems or 'ok'}"
        )
    return lines


def headline(phase: dict, fills: dict) -> dict:
    """The main figures of one phase, flat: label -> {'ours', 'theirs', 'unit', 'better'}."""
    rows: dict = {}

    def add(label, unit, better, a, b):
        rows[label] = {"ours": a, "theirs": b, "unit": unit, "better": better}

    lat_o, lat_t = phase["ours"].get("latency", {}), phase["theirs"].get("latency", {})
    for key, fig in lat_o.items():
        mode, target, request = key.split("|")
        other = lat_t.get(f"none|{target}|{request}") or {}
        label = f"p50 {request}{', ' + target if target else ''} ({mode})"
        add(label, "ms", "lower", fig.get("p50"), other.get("p50") if mode == "basic" else None)
    for section in ("wrk", "blob"):
        wo, wt = phase["ours"].get(section, {}), phase["theirs"].get(section, {})
        for key, fig in wo.items():
            other = wt.get(key) or {}
            target, conns = key.rsplit("|c", 1)
            name = f"wrk {target} -c{conns}"
            add(f"{name} req/s", "req/s", "higher", fig.get("rps"), other.get("rps"))
            add(f"{name} p99", "ms", "lower", fig.get("p99"), other.get("p99"))
            add(
                f"{name} server CPU/req",
                "ms",
                "lower",
                fig.get("cpu_ms_per_request"),
                other.get("cpu_ms_per_request"),
            )
            probe, oprobe = fig.get("probe") or {}, other.get("probe") or {}
            if probe or oprobe:
                add(f"{name} probe p50", "ms", "lower", probe.get("p50"), oprobe.get("p50"))
                add(f"{name} probe max", "ms", "lower", probe.get("max"), oprobe.get("max"))
    lo, lt = phase["ours"].get("listings", {}), phase["theirs"].get("listings", {})
    for label, fig in lo.items():
        add(f"p50 {label}", "ms", "lower", fig.get("p50"), (lt.get(label) or {}).get("p50"))
    for kind in ("tags", "repos"):
        a, b = (fills.get("ours") or {}).get(kind), (fills.get("theirs") or {}).get(kind)
        if a or b:
            a, b = a or {}, b or {}
            add(
                f"fill {kind} PUT/s",
                "PUT/s",
                "higher",
                a.get("manifest_puts_per_s"),
                b.get("manifest_puts_per_s"),
            )
            for end in ("first", "last"):
                add(
                    f"fill {kind} PUT p50 {end}",
                    "ms",
                    "lower",
                    (a.get(f"put_{end}") or {}).get("p50"),
                    (b.get(f"put_{end}") or {}).get("p50"),
                )
    return rows


def analyze_lines(before: dict, after: dict, seconds: float, states: list[dict]) -> list[str]:
    """Ours before vs after ANALYZE, figure by figure."""
    head = f"{'figure (ours)':<78} {'before':>9} {'after':>9}  after/before"
    lines = [
        f"== ANALYZE: ours before and after (ANALYZE took {seconds:.2f} s); planner state "
        f"before: {states[0]}; after: {states[1]}",
        head,
        "-" * len(head),
    ]
    for label, row in after.items():
        if label.startswith("fill ") or not compact(label):
            continue
        a = (before.get(label) or {}).get("ours")
        b = row["ours"]
        ratio = f"{b / a:.2f}" if is_number(a) and is_number(b) and a else ""
        lines.append(f"{label:<78} {fmt(a):>9} {fmt(b):>9}  {ratio}")
    return lines


def compact(label: str) -> bool:
    """Whether a headline figure is in the short tables (latencies: Basic only)."""
    return not label.endswith(("(bearer)", "(anonymous)"))


def fmt(value) -> str:
    if not is_number(value):
        return "-"
    return f"{value:.0f}" if value >= 100 else ms(value)


# --- comparing two runs ---------------------------------------------------------------------


def compare(small_path: str, big_path: str) -> int:
    """How every headline figure grew from one run (e.g. a small fill) to another."""
    small = json.loads(Path(small_path).read_text())
    big = json.loads(Path(big_path).read_text())
    out = [
        f"A: {small_path}: {small.get('scale')}, commit {small['git']['start']['commit']}",
        f"B: {big_path}: {big.get('scale')}, commit {big['git']['start']['commit']}",
    ]
    for phase, rows in big["headline"].items():
        base = small["headline"].get(phase) or list(small["headline"].values())[-1]
        head = (
            f"{'figure':<70} {'unit':>5}  {'ours A':>9} {'ours B':>9} {'B/A':>6}  "
            f"{'Dist A':>9} {'Dist B':>9} {'B/A':>6}"
        )
        out += ["", f"== {phase}: A -> B", head, "-" * len(head)]
        for label, row in rows.items():
            if not compact(label):
                continue
            old = base.get(label) or {}
            cells = []
            for side in ("ours", "theirs"):
                a, b = old.get(side), row.get(side)
                growth = f"{b / a:.2f}" if is_number(a) and is_number(b) and a else ""
                cells.append(f"{fmt(a):>9} {fmt(b):>9} {growth:>6}")
            out.append(f"{label:<70} {row['unit']:>5}  {cells[0]}  {cells[1]}")
    print("\n".join(out))
    return 0


# --- running --------------------------------------------------------------------------------


def measure(server: dict, content: Content, targets, args, extra: dict, results: dict) -> None:
    """One round of every measurement of one server, appended to results[section][key]."""
    name = server["name"]

    def keep(section: str, figures: dict) -> None:
        for key, fig in figures.items():
            results.setdefault(section, {}).setdefault(key, []).append(fig)

    sbs.progress(f"{name}: latency ({args.requests} requests per series)")
    wait_quiet(args, server, "latency")
    with CpuWatch(server) as watch:
        keep("latency", latency(server, targets, args.requests))
    keep("cpu", {"latency": watch.figures})
    for target in wrk_targets(targets):
        for conns in args.connections:
            sbs.progress(f"{name}: wrk -c{conns} on {target['label']}")
            path = f"/v2/{target['repo']}/manifests/{target['tag']}"
            wait_quiet(args, server, f"wrk -c{conns} {target['label']}")
            fig = run_wrk(server, path, conns, args, wrk_headers(server), probe=True)
            keep("wrk", {f"{target['label']}|c{conns}": fig})
    problem = check_blob(server, content)
    if problem:
        keep("blob", {f"{rb.human_size(BLOB_SIZE)} blob|c64": {"error": problem}})
    else:
        sbs.progress(f"{name}: wrk -c64 on the {rb.human_size(BLOB_SIZE)} blob")
        path = f"/v2/{SMALL_REPO}/blobs/{content.blob_digest}"
        wait_quiet(args, server, "wrk blob")
        fig = run_wrk(server, path, 64, args, wrk_headers(server, accept=False), probe=False)
        keep("blob", {f"{rb.human_size(BLOB_SIZE)} blob|c64": fig})
    sbs.progress(f"{name}: listings")
    wait_quiet(args, server, "listings")
    keep("listings", listings(server, content, extra, args.page_requests))


def wrk_targets(targets: list[dict]) -> list[dict]:
    """The targets wrk runs against: the big image's tags when there is one."""
    return [t for t in targets if t["label"] != "bench"] or targets


def merged(results: dict) -> dict:
    """results[section][key] (a list over rounds) -> one figure dict per key."""
    return {
        section: {key: merge_rounds(figs) for key, figs in keys.items()}
        for section, keys in results.items()
    }


def describe(args, git: dict, stack: sbs.Stack, ours: dict, theirs: dict, content) -> list[str]:
    """The set-up, for the top of the output."""
    database = "SQLite in its data dir"
    if ours.get("database"):
        database = f"PostgreSQL {ours['database'].rsplit('/', 1)[1]} (fresh, dropped at the end)"
    cache = ours.get("cache") or "files in its data dir"
    scale = (
        f"{content.tags} tags in {BIG_REPO}, {content.repos} more repositories"
        if content.filled
        else f"no fill: the tiny image {SMALL_REPO}:{SMALL_TAG} only"
    )
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"command: {sbs.command_line()}",
        f"commit:  {sbs.git_text(git)}",
        f"date:    {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs (shared by the servers, wrk "
        f"and this client), Python {platform.python_version()}, load average {load} at start",
        f"data:    {stack.root} ({sbs.mount_of(stack.root)})",
        f"ours:    forge {git['commit']}, gunicorn -c gunicorn.conf.py, 1 node x "
        f"{ours['workers_per_node']} ForgeWorker processes (a quick lane, 16 transfer threads), "
        f"{database}, cache {cache}, "
        f"local disk; {ours['url']}",
        f"theirs:  {sbs.distribution_version()}, one process, no auth, filesystem storage, "
        f"inmemory blob descriptor cache; {theirs['url']}",
        f"scale:   {scale}",
        f"rounds:  {args.rounds}, alternating ours, theirs in each measurement; "
        f"{args.requests} requests per latency series; wrk {args.duration} s per run, "
        f"connections {','.join(map(str, args.connections))}",
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description="Manifest latency and throughput, forge vs CNCF Distribution 2.8.",
    )
    parser.add_argument("--requests", type=int, default=500, help="per latency series (500)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (10)")
    parser.add_argument(
        "--connections",
        type=lambda text: [int(x) for x in text.split(",") if x],
        default=[16, 64, 256],
        help="wrk connection counts (16,64,256)",
    )
    parser.add_argument(
        "--wrk-timeout", type=int, default=10, help="wrk --timeout, seconds (10; wrk's own is 2)"
    )
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--cache", choices=("file", "redis"), default="file")
    parser.add_argument("--tags", type=int, default=1, help="tags of the big image (1: no fill)")
    parser.add_argument("--repos", type=int, default=0, help="more repositories (0)")
    parser.add_argument("--fill-threads", type=int, default=16, help="pushing threads (16)")
    parser.add_argument("--page-requests", type=int, default=5, help="requests per listing (5)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds, ours/theirs alternating")
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=15.0,
        help="before each measurement wait until other processes use less than this %% of "
        "the CPUs (15)",
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=90.0, help="... but at most this many seconds (90)"
    )
    parser.add_argument("--data-root", metavar="DIR", help="make the temp dir under DIR")
    parser.add_argument("--json", metavar="FILE", help="write every figure here")
    parser.add_argument("--keep", action="store_true", help="leave the temp dir")
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("A.json", "B.json"),
        help="only print how B's figures compare with A's (two --json files)",
    )
    args = parser.parse_args(argv)
    if args.tags < 1 or args.repos < 0 or args.rounds < 1 or args.requests < 1:
        parser.error("--tags and --rounds and --requests must be at least 1, --repos >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Set up, fill, measure, report, clean up; 0 if nothing went wrong."""
    args = parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    for tool in (WRK, sbs.DISTRIBUTION):
        if not shutil.which(tool):
            print(f"{tool} is missing", file=sys.stderr)
            return 2
    sbs.interrupt_on_signals()
    git = sbs.git_state()
    stack = sbs.Stack(args.keep, args.data_root, prefix="manifest_bench-")
    content = Content(args.tags, args.repos)
    document: dict = {
        "command": sbs.command_line(),
        "git": {"start": git},
        "scale": f"tags {args.tags}, repos {args.repos}, db {args.db}, cache {args.cache}",
        "ok": False,
    }
    status = 1
    try:
        sbs.progress("starting our server")
        ours = sbs.start_forge(
            stack,
            argparse.Namespace(nodes=1),
            None,
            postgres=args.db == "postgres",
            redis_cache=args.cache == "redis",
        )
        ours["name"] = "ours"
        sbs.progress("starting Distribution")
        theirs = sbs.start_distribution(stack, None)
        theirs["name"] = "theirs"
        servers = (ours, theirs)
        header = describe(args, git, stack, ours, theirs, content)
        api_token = forge_manage(
            stack, "createtoken", sbs.USER, "--name", "bench", "--scope", "read:package"
        )
        for server in servers:
            push_small_image(server, content)
        fills: dict = {}
        if content.filled:
            for server in servers:
                fills[server["name"]] = fill(server, content, args)
        targets = content.targets()
        extra = {"api": {"Authorization": f"token {api_token}"}, "web": {}}
        phases = ["results"] if args.db == "sqlite" else ["before ANALYZE", "after ANALYZE"]
        raw: dict = {}
        planner: list[dict] = []
        analyze_seconds = 0.0
        for index, phase in enumerate(phases):
            if phase == "after ANALYZE":
                sbs.progress("ANALYZE")
                analyze_seconds = analyze(ours["database"])
            if args.db == "postgres":
                planner.append(planner_state(ours["database"]))
            extra["web"] = {"Cookie": sign_in(ours)}
            raw[phase] = {"ours": {}, "theirs": {}}
            for number in range(1, args.rounds + 1):
                for server in servers:
                    if index > 0 and server is theirs:
                        continue  # Distribution has no ANALYZE: measured once
                    sbs.progress(f"{phase}, round {number}: {server['name']}")
                    measure(server, content, targets, args, extra, raw[phase][server["name"]])
            if index > 0:
                raw[phase]["theirs"] = raw[phases[0]]["theirs"]
        figures = {
            phase: {side: merged(r) for side, r in sides.items()} for phase, sides in raw.items()
        }
        out = [*header]
        if content.filled:
            out += ["", *fill_lines(fills, content, args.fill_threads)]
        heads = {}
        sizes = listing_sizes(content)
        for phase, sides in figures.items():
            o, t = sides["ours"], sides["theirs"]
            keys = [(k, k.split("|")[0]) for k in o.get("wrk", {})]
            keys += [(k, k.split("|")[0]) for k in o.get("blob", {})]
            out += [
                "",
                f"######## {phase}"
                + (" (Distribution: measured once)" if phase == "after ANALYZE" else ""),
            ]
            out += ["", *latency_lines(o["latency"], t["latency"], targets, args.requests)]
            out.append(background_line(o, t))
            out += [
                "",
                *throughput_lines({**o["wrk"], **o["blob"]}, {**t["wrk"], **t["blob"]}, keys, args),
            ]
            out += ["", *listing_lines(o["listings"], t["listings"], args.page_requests, sizes)]
            heads[phase] = headline(sides, fills)
        if len(phases) == 2:
            out += [
                "",
                *analyze_lines(heads[phases[0]], heads[phases[1]], analyze_seconds, planner),
            ]
        problems = find_problems(figures, fills)
        server_logs = log_summary(ours, theirs)
        out += ["", f"server logs: {server_logs['text']}", quiet_line(args)]
        if problems:
            out += ["", "== problems", *problems]
            for log in (*ours["logs"], *theirs["logs"]):
                excerpt = log_errors(Path(log))
                if excerpt:
                    out += [f"--- {log}", excerpt]
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        out.append(f"load average at the end: {load}")
        git_end = sbs.git_state()
        document["git"]["end"] = git_end
        if git_end != git:
            out.append(
                f"\nnote: the work tree changed during the run: now {sbs.git_text(git_end)}; "
                f"the servers loaded {git['commit']} at start"
            )
        print("\n".join(out), flush=True)
        document.update(
            ok=not problems,
            header=header,
            options={k: v for k, v in vars(args).items() if k not in ("json", "compare")},
            servers={"ours": ours, "theirs": theirs},
            targets=[{k: v for k, v in t.items() if k != "body"} for t in targets],
            fill=fills,
            figures=figures,
            raw=raw,
            headline=heads,
            planner=planner,
            analyze_seconds=analyze_seconds,
            problems=problems,
            server_logs=server_logs,
            quiet_waits=QUIET_WAITS,
            output="\n".join(out),
        )
        status = 0 if not problems else 1
    except (sbs.SetupError, BenchError, rb.BenchError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        document["error"] = str(exc)
        for log in sorted(stack.root.glob("*/*.log")):
            print(f"--- {log}\n{sbs.log_excerpt(log, 90)}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        document["error"] = "interrupted"
        status = 130
    finally:
        stack.cleanup()
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(document, fh, indent=2, default=str)
                fh.write("\n")
    return status


def find_problems(figures: dict, fills: dict) -> list[str]:
    """Every error any measurement saw, one line each."""
    problems = []
    for phase, sides in figures.items():
        for side, sections in sides.items():
            for section, keys in sections.items():
                for key, fig in keys.items():
                    errs = sum(fig.get(k, 0) or 0 for k in SUMMED)
                    probe = fig.get("probe") or {}
                    statuses = fig.get("server_statuses") or {}
                    bad = {k: v for k, v in statuses.items() if k != "200"}
                    what = f"{phase} / {side} / {section} / {key}"
                    if errs or fig.get("error") or fig.get("exit"):
                        detail = fig.get("first_error") or fig.get("error") or ""
                        problems.append(f"{what}: {errs} error(s) {detail}".rstrip())
                    if probe.get("failures"):
                        first = probe.get("first_failure")
                        problems.append(f"{what}: probe {probe['failures']} failure(s): {first}")
                    if bad:
                        problems.append(f"{what}: server answered {bad}")
    for name, phases in fills.items():
        for kind, fig in phases.items():
            if fig["errors"] or fig["failures"]:
                problems.append(
                    f"fill {name} {kind}: {fig['errors']} error(s), {fig['failures']} item(s) "
                    f"failed 3 times: {fig['error_kinds']}"
                )
    return problems


def log_errors(log: Path, lines: int = 60) -> str:
    """The last traceback in a server log, or its last error lines; '' if neither."""
    text = log.read_text(errors="replace").splitlines()
    starts = [i for i, line in enumerate(text) if line.startswith("Traceback")]
    if starts:
        return "\n".join(text[max(0, starts[-1] - 3) : starts[-1] + lines])
    errors = [line for line in text if re.search(r"level=(error|fatal|panic)", line)]
    return "\n".join(errors[-10:])


def log_summary(ours: dict, theirs: dict) -> dict:
    """Statuses in ours' access log, tracebacks in it, error lines in Distribution's."""
    statuses = access_statuses(ours["logs"][0], 0)
    text = Path(ours["logs"][0]).read_text(errors="replace")
    tracebacks = text.count("Traceback")
    worker_events = len(re.findall(r"WORKER TIMEOUT|Worker \(pid:\d+\) was sent", text))
    dist = Path(theirs["logs"][0]).read_text(errors="replace")
    dist_errors = len(re.findall(r"level=(error|fatal|panic)", dist))
    classes: dict[str, int] = {}
    for code, count in statuses.items():
        classes[code] = count
    summary = ", ".join(f"{code}: {count}" for code, count in sorted(classes.items()))
    return {
        "ours_statuses": statuses,
        "ours_tracebacks": tracebacks,
        "ours_worker_timeouts": worker_events,
        "distribution_error_lines": dist_errors,
        "text": (
            f"ours' access log: {summary}; tracebacks {tracebacks}; worker timeouts/kills "
            f"{worker_events}. Distribution's log: {dist_errors} error line(s)"
        ),
    }


if __name__ == "__main__":
    sys.exit(main())
