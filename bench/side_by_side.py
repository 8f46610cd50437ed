"""Benchmark our registry (forge) and CNCF Distribution 2.8 side by side, in one run.

Starts both servers on free loopback ports in a temporary directory (local disk, or an S3
bucket each on one moto server), runs bench/registry_bench.py against each with the same
options, prints both tables and a comparison (ours, Distribution's, ratio), and stops
everything it started, also on Ctrl-C or a failure.

    .venv/bin/python bench/side_by_side.py --steps manifest,monolithic,chunked,chunked-new-conn,pull
    .venv/bin/python bench/side_by_side.py --storage s3 --size 256MiB --nodes 2 \
        --steps chunked-new-conn,monolithic --json /tmp/sbs.json

--nodes 2 (with s3) runs two forge servers, each with its own data dir, on one fresh
PostgreSQL database, one Redis cache and one bucket, behind nginx (round robin per
request); Distribution stays one process. Standard library, plus boto3 (S3 runs) and
psycopg and redis (two-node runs) from the project venv. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import itertools
import json
import multiprocessing
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import registry_bench as rb

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "registry_bench.py"
S3_SERVER = ROOT / "bench" / "s3_server.py"
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")
GUNICORN = str(VENV_BIN / "gunicorn")
DISTRIBUTION = "/usr/bin/docker-registry"
NGINX = "/usr/sbin/nginx"
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379

USER, PASSWORD = "alice", "alice-pw"
OURS_REPO, THEIRS_REPO = "alice/bench", "bench/blob"
S3_KEYS = {"access": "bench", "secret": "bench", "region": "us-east-1"}
BUCKETS = {"ours": "forge-bench-ours", "theirs": "forge-bench-distribution"}

START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
LOG_EXCERPT_LINES = 40
STDOUT = subprocess.STDOUT


class SetupError(Exception):
    """A server or a resource it needs could not be set up."""


# --- processes and clean-up -----------------------------------------------------------------


class Stack:
    """Everything this run started or made, so it can all be undone in reverse order."""

    def __init__(self, keep: bool):
        self.keep = keep
        self.root = Path(tempfile.mkdtemp(prefix="side_by_side-"))
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.undo: list[tuple[str, object]] = []  # (what, callable) run at clean-up
        self._ports: set[int] = set()

    def dir(self, name: str) -> Path:
        """A new directory under the run's temp dir."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def free_port(self) -> int:
        """A loopback port nothing listens on now, never handed out twice in this run."""
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            if port not in self._ports:
                self._ports.add(port)
                return port

    def start(
        self, name: str, cmd: list[str], log: Path, env: dict | None = None, stderr=STDOUT
    ) -> subprocess.Popen:
        """Start a process in its own session, stdout (and stderr) to log; remember it.

        stderr=None leaves the child's stderr on ours (registry_bench's progress lines).
        """
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=stderr,
                start_new_session=True,
            )
        self.processes.append((name, proc))
        return proc

    def stop(self, name: str, proc: subprocess.Popen) -> None:
        """SIGTERM the process's group, wait, then SIGKILL whatever of the group is left."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print(f"... {name} (pid {proc.pid}) ignored SIGTERM; killing", file=sys.stderr)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(STOP_TIMEOUT)
        for pid in group_members(proc.pid):  # e.g. workers that outlived their master
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def cleanup(self) -> None:
        """Stop every process (newest first), undo every resource, remove the temp dir."""
        while self.processes:
            name, proc = self.processes.pop()
            try:
                self.stop(name, proc)
            except Exception as exc:  # keep cleaning up the rest
                print(f"... stopping {name}: {exc!r}", file=sys.stderr)
        while self.undo:
            what, action = self.undo.pop()
            try:
                action()
            except Exception as exc:
                print(f"... {what}: {exc!r}", file=sys.stderr)
        if self.keep:
            print(f"... kept {self.root}", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def group_members(pgid: int) -> list[int]:
    """Pids of the live processes whose process group is pgid."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
            fields = stat[stat.rindex(")") + 2 :].split()
        except (OSError, ValueError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(name))
    return members


def interrupt_on_signals() -> None:
    """Turn SIGTERM and SIGHUP (and SIGINT, even if inherited as ignored) into
    KeyboardInterrupt, so the clean-up still runs.
    """

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def log_excerpt(log: Path, lines: int = LOG_EXCERPT_LINES) -> str:
    """The part of a server log that explains a failure: the last traceback, else the tail."""
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(cannot read {log}: {exc})"
    starts = [i for i, line in enumerate(text) if "Traceback" in line]
    if starts:
        first = max(0, starts[-1] - 5)
        return "\n".join(text[first : first + lines])
    return "\n".join(text[-lines:])


def wait_ready(url: str, proc: subprocess.Popen, log: Path, statuses=(200, 401)) -> float:
    """Poll GET <url>/v2/ until it answers one of statuses; seconds waited."""
    started = time.monotonic()
    host, port = url.split("//", 1)[1].split(":")
    while True:
        if proc.poll() is not None:
            raise SetupError(
                f"{proc.args[0]} exited with {proc.returncode} before answering:\n"
                + log_excerpt(log)
            )
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            conn.request("GET", "/v2/")
            status = conn.getresponse().status
            if status in statuses:
                return time.monotonic() - started
        except OSError:
            pass
        finally:
            conn.close()
        if time.monotonic() - started > START_TIMEOUT:
            raise SetupError(
                f"{url}/v2/ did not answer within {START_TIMEOUT:.0f} s:\n" + (log_excerpt(log))
            )
        time.sleep(0.2)


def run_checked(cmd: list[str], env: dict, what: str, log: Path) -> str:
    """Run a short command to completion (output appended to log); its stdout."""
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"$ {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        raise SetupError(f"{what} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout.strip()


def progress(message: str) -> None:
    """A progress line on stderr."""
    print(f"=== {message}", file=sys.stderr, flush=True)


# --- resources: S3, PostgreSQL, Redis ------------------------------------------------------


def s3_client(endpoint: str):
    """A boto3 S3 client for the moto server."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=S3_KEYS["region"],
        aws_access_key_id=S3_KEYS["access"],
        aws_secret_access_key=S3_KEYS["secret"],
    )


def start_s3(stack: Stack) -> dict:
    """One moto S3 server (bench/s3_server.py) with a bucket for each registry."""
    port = stack.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = stack.dir("s3") / "s3_server.log"
    cmd = [PYTHON, str(S3_SERVER), "--port", str(port), "--bucket", BUCKETS["ours"]]
    proc = stack.start("s3 server", cmd, log)
    started = time.monotonic()
    while "S3 at" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() - started > START_TIMEOUT:
            raise SetupError("the S3 server did not start:\n" + log_excerpt(log))
        time.sleep(0.2)
    s3_client(endpoint).create_bucket(Bucket=BUCKETS["theirs"])
    return {"endpoint": endpoint, "pid": proc.pid, "log": str(log), "buckets": dict(BUCKETS)}


def create_database(stack: Stack) -> str:
    """A fresh PostgreSQL database forge_bench_<random>, dropped at clean-up; its URL."""
    import psycopg

    name = f"forge_bench_{secrets.token_hex(4)}"
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    stack.undo.append((f"dropping database {name}", drop))
    return f"{POSTGRES_URL}/{name}"


def claim_redis_db(stack: Stack) -> str:
    """An empty Redis database number (15 down to 1), flushed again at clean-up; its URL."""
    import redis

    for number in range(15, 0, -1):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number, socket_timeout=5)
        try:
            if client.dbsize() == 0:
                stack.undo.append((f"flushing Redis db {number}", client.flushdb))
                return f"redis://{REDIS_HOST}:{REDIS_PORT}/{number}"
        except redis.RedisError as exc:
            raise SetupError(f"Redis at {REDIS_HOST}:{REDIS_PORT}: {exc}") from exc
    raise SetupError("no empty Redis database among 1-15")


# --- our server (forge) ---------------------------------------------------------------------


# Not passed to the servers: our own settings would leak in, and Distribution's AWS SDK
# refuses to start with AWS_CA_BUNDLE set (its S3 client has a custom transport); the
# S3 endpoint here is plain HTTP anyway.
DROPPED_VARIABLES = ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "AWS_CA_BUNDLE")


def clean_env() -> dict:
    """This process's environment without FORGE_* and DROPPED_VARIABLES."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FORGE_") and k not in DROPPED_VARIABLES
    }


def forge_workers() -> int:
    """How many workers gunicorn.conf.py starts on this machine (FORGE_WORKERS unset)."""
    return min(2 * multiprocessing.cpu_count() + 1, 8)


def start_forge(stack: Stack, args: argparse.Namespace, s3: dict | None) -> dict:
    """Our server (or two behind nginx): migrate, create the user, gunicorn; its URL and pids."""
    shared = clean_env()
    if s3:
        shared.update(
            FORGE_STORAGE="s3",
            FORGE_S3_ENDPOINT_URL=s3["endpoint"],
            FORGE_S3_BUCKET=BUCKETS["ours"],
            FORGE_S3_ACCESS_KEY=S3_KEYS["access"],
            FORGE_S3_SECRET_KEY=S3_KEYS["secret"],
            FORGE_S3_REGION=S3_KEYS["region"],
            FORGE_S3_ADDRESSING_STYLE="path",
        )
    info: dict = {"nodes": args.nodes, "workers_per_node": forge_workers(), "logs": []}
    if args.nodes == 2:
        shared["DATABASE_URL"] = create_database(stack)
        shared["FORGE_SECRET_KEY"] = secrets.token_urlsafe(50)
        shared["FORGE_CACHE_URL"] = claim_redis_db(stack)
        info.update(database=shared["DATABASE_URL"], cache=shared["FORGE_CACHE_URL"])
    envs = []
    for node in range(1, args.nodes + 1):
        env = dict(shared, FORGE_DATA_DIR=str(stack.dir(f"ours{node}/data")))
        envs.append(env)
    setup_log = stack.root / "ours1" / "setup.log"
    progress("forge: migrate and createuser")
    run_checked([PYTHON, "manage.py", "migrate", "--noinput"], envs[0], "migrate", setup_log)
    run_checked(
        [PYTHON, "manage.py", "createuser", USER, "--password", PASSWORD],
        envs[0],
        "createuser",
        setup_log,
    )
    pids, ports = [], []
    for node, env in enumerate(envs, start=1):
        port = stack.free_port()
        env = dict(env, HOST="127.0.0.1", PORT=str(port))
        log = stack.root / f"ours{node}" / "gunicorn.log"
        cmd = [GUNICORN, "-c", "gunicorn.conf.py", "forge.wsgi:application"]
        proc = stack.start(f"forge node {node}", cmd, log, env)
        waited = wait_ready(f"http://127.0.0.1:{port}", proc, log)
        progress(f"forge node {node}: pid {proc.pid}, port {port}, ready in {waited:.1f} s")
        pids.append(proc.pid)
        ports.append(port)
        info["logs"].append(str(log))
    info.update(pids=pids, ports=ports)
    if args.nodes == 2:
        info["nginx"] = start_nginx(stack, ports)
        info["url"] = info["nginx"]["url"]
    else:
        info["url"] = f"http://127.0.0.1:{ports[0]}"
    return info


NGINX_CONF = """\
# Written by bench/side_by_side.py: round robin per request over two forge nodes.
{user}worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format bench '$remote_addr [$time_iso8601] "$request" $status '
                     'req=$request_length sent=$bytes_sent rt=$request_time '
                     'up=$upstream_addr ust=$upstream_status urt=$upstream_response_time';
    access_log {dir}/access.log bench;
    client_body_temp_path {dir}/client_body_temp;
    proxy_temp_path {dir}/proxy_temp;
    fastcgi_temp_path {dir}/fastcgi_temp;
    uwsgi_temp_path {dir}/uwsgi_temp;
    scgi_temp_path {dir}/scgi_temp;

    # No keepalive to the upstreams: every request, like every client connection of
    # the new-connection step, opens a new connection to the node it is sent to.
    upstream forge {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_http_version 1.1;
        proxy_read_timeout 900s;
        proxy_send_timeout 900s;
        location / {{
            proxy_pass http://forge;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


def start_nginx(stack: Stack, ports: list[int]) -> dict:
    """nginx in front of the forge nodes, as an ordinary foreground process."""
    directory = stack.dir("nginx")
    port = stack.free_port()
    servers = "\n".join(f"        server 127.0.0.1:{p};" for p in ports)
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers need the temp dir
    conf = directory / "nginx.conf"
    conf.write_text(NGINX_CONF.format(user=user, dir=directory, servers=servers, port=port))
    log = directory / "nginx.stderr.log"
    cmd = [NGINX, "-e", str(directory / "error.log"), "-c", str(conf), "-p", str(directory)]
    proc = stack.start("nginx", [*cmd, "-g", "daemon off;"], log)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc, log)
    progress(f"nginx: pid {proc.pid}, port {port}, upstreams {ports}")
    return {
        "url": url,
        "pid": proc.pid,
        "conf": str(conf),
        "access_log": str(directory / "access.log"),
    }


def alternation(access_log: str) -> dict:
    """Which node each request of the run went to, from nginx's log; PATCHes that alternated."""
    patches, sequence = [], []
    pattern = re.compile(r'"(\w+) (\S+) [^"]*" (\d+) .* up=(\S+)')
    with open(access_log, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            match = pattern.search(line)
            if not match:
                continue
            method, _, _, upstream = match.groups()
            sequence.append(upstream)
            if method == "PATCH":
                patches.append(upstream)
    switches = sum(1 for a, b in itertools.pairwise(patches) if a != b)
    counts: dict[str, int] = {}
    for upstream in patches:
        counts[upstream] = counts.get(upstream, 0) + 1
    return {
        "requests": len(sequence),
        "patches": len(patches),
        "patches_per_node": counts,
        "consecutive_patches_on_other_node": switches,
        "consecutive_pairs": max(len(patches) - 1, 0),
    }


# --- Distribution ---------------------------------------------------------------------------


def to_yaml(value, indent: int = 0) -> str:
    """A nested dict of strings, numbers and booleans as YAML."""
    lines = []
    for key, item in value.items():
        pad = "  " * indent
        if isinstance(item, dict):
            lines.append(f"{pad}{key}:")
            lines.append(to_yaml(item, indent + 1))
        elif isinstance(item, bool):
            lines.append(f"{pad}{key}: {'true' if item else 'false'}")
        else:
            lines.append(f"{pad}{key}: {json.dumps(item) if isinstance(item, str) else item}")
    return "\n".join(lines)


def distribution_version() -> str:
    """What `docker-registry --version` says."""
    try:
        out = subprocess.run([DISTRIBUTION, "--version"], capture_output=True, text=True)
        return out.stdout.strip() or out.stderr.strip()
    except OSError as exc:
        return f"unknown ({exc})"


def start_distribution(stack: Stack, s3: dict | None) -> dict:
    """docker-registry serve with a config in the temp dir; its URL and pid."""
    directory = stack.dir("distribution")
    port = stack.free_port()
    storage: dict = {
        "cache": {"blobdescriptor": "inmemory"},  # as Debian's default config
        "delete": {"enabled": True},
        "redirect": {"disable": False},
    }
    if s3:
        # Distribution 2.8's s3 driver has no forcepathstyle key: a regionendpoint
        # turns path-style addressing on by itself.
        storage["s3"] = {
            "accesskey": S3_KEYS["access"],
            "secretkey": S3_KEYS["secret"],
            "region": S3_KEYS["region"],
            "regionendpoint": s3["endpoint"],
            "bucket": BUCKETS["theirs"],
            "secure": False,
            "v4auth": True,
        }
    else:
        storage["filesystem"] = {"rootdirectory": str(stack.dir("distribution/storage"))}
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": storage,
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    conf = directory / "config.yml"
    conf.write_text(to_yaml(config) + "\n")
    log = directory / "registry.log"
    proc = stack.start("docker-registry", [DISTRIBUTION, "serve", str(conf)], log, clean_env())
    url = f"http://127.0.0.1:{port}"
    waited = wait_ready(url, proc, log, statuses=(200,))
    progress(f"Distribution: pid {proc.pid}, port {port}, ready in {waited:.1f} s")
    return {"url": url, "pids": [proc.pid], "conf": str(conf), "logs": [str(log)]}


# --- running the benchmark ------------------------------------------------------------------


def bench_args(args: argparse.Namespace) -> list[str]:
    """The registry_bench options both servers get."""
    return [
        "--size",
        str(args.size),
        "--chunk",
        str(args.chunk),
        "--steps",
        ",".join(args.steps),
        "--parallel",
        str(args.parallel),
        "--requests",
        str(args.requests),
        "--seed",
        str(args.seed),
    ]


def run_bench(stack: Stack, name: str, server: dict, extra: list[str], common: list[str]):
    """Run registry_bench against one server; (its table, its JSON document)."""
    out_json = stack.root / f"bench-{name}.json"
    out_table = stack.root / f"bench-{name}.txt"
    pids = ",".join(str(p) for p in server["pids"])
    cmd = [PYTHON, str(BENCH), "--url", server["url"], *extra, *common, "--pid", pids]
    cmd += ["--json", str(out_json)]
    os.sync()  # the previous run's dirty pages are written now, not during this one
    time.sleep(1)
    progress(f"{name}: {shlex.join(cmd)}")
    proc = stack.start(f"registry_bench ({name})", cmd, out_table, stderr=None)
    proc.wait()
    stack.processes.remove((f"registry_bench ({name})", proc))
    text = out_table.read_text(errors="replace")
    try:
        document = json.loads(out_json.read_text())
    except (OSError, ValueError):
        document = {"ok": False, "error": f"registry_bench exited {proc.returncode}, no JSON"}
    if not document.get("ok"):
        excerpts = {log: log_excerpt(Path(log)) for log in server.get("logs", [])}
        document["server_log_excerpts"] = excerpts
    return text, document


# --- the comparison -------------------------------------------------------------------------


def dig(document: dict, path: str):
    """document['a']['b'] for 'a.b', or None if any part is missing."""
    value = document
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


# (label, JSON path, kind): rate = MB/s (higher is better), ms and mib (lower is better),
# x = a dimensionless figure shown side by side without a ratio.
MEASURES = [
    ("manifest HEAD median", "manifest.head.median_ms", "ms"),
    ("manifest GET median", "manifest.get.median_ms", "ms"),
    ("push monolithic", "push_monolithic.mb_per_s", "rate"),
    ("  server wait after last byte", "push_monolithic.server_wait_ms", "ms"),
    ("push single POST ?digest=", "push_single_post.mb_per_s", "rate"),
    ("push chunked (keep-alive)", "push_chunked.mb_per_s", "rate"),
    ("  PATCH first", "push_chunked.patch_ms.first", "ms"),
    ("  PATCH median", "push_chunked.patch_ms.median", "ms"),
    ("  PATCH last", "push_chunked.patch_ms.last", "ms"),
    ("  PATCH last/first", "push_chunked.patch_ms.last_over_first", "x"),
    ("push chunked, new conn per PATCH", "push_chunked_new_conn.mb_per_s", "rate"),
    ("  POST (new conn)", "push_chunked_new_conn.post_ms", "ms"),
    ("  PATCH first", "push_chunked_new_conn.patch_ms.first", "ms"),
    ("  PATCH median", "push_chunked_new_conn.patch_ms.median", "ms"),
    ("  PATCH last", "push_chunked_new_conn.patch_ms.last", "ms"),
    ("  PATCH max", "push_chunked_new_conn.patch_ms.max", "ms"),
    ("  PATCH last/first", "push_chunked_new_conn.patch_ms.last_over_first", "x"),
    ("  final PUT ?digest=", "push_chunked_new_conn.put_ms", "ms"),
    ("pull", "pull.mb_per_s", "rate"),
    ("  pull first byte", "pull.first_byte_ms", "ms"),
    ("parallel pulls, aggregate", "parallel_pulls.mb_per_s", "rate"),
    ("peak RSS, monolithic push", "push_monolithic.rss.peak_process_mib", "mib"),
    ("peak RSS, chunked push", "push_chunked.rss.peak_process_mib", "mib"),
    ("peak RSS, new-conn push", "push_chunked_new_conn.rss.peak_process_mib", "mib"),
]
UNITS = {"rate": "MB/s", "ms": "ms", "mib": "MiB", "x": "x"}


def ratio_text(kind: str, ours: float, theirs: float) -> tuple[float | None, str]:
    """(ours/theirs, words): 'faster'/'slower' for rates and times, 'more'/'less' for memory."""
    if kind == "x" or not ours or not theirs:
        return None, ""
    ratio = ours / theirs
    if kind == "rate":
        words = f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"
        return ratio, f"{ratio:.2f}  ({words})"
    if kind == "ms":
        words = f"{ratio:.2f}x slower" if ratio >= 1 else f"{1 / ratio:.2f}x faster"
        return ratio, words
    return ratio, f"{ratio:.2f}x the memory"


def comparison(ours: dict, theirs: dict) -> list[dict]:
    """One row per measure either side has."""
    rows = []
    for label, path, kind in MEASURES:
        a, b = dig(ours, path), dig(theirs, path)
        if path.startswith("push_single_post") and (a is not None or b is not None):
            a = a if dig(ours, "push_single_post.supported") else "not supported"
            b = b if dig(theirs, "push_single_post.supported") else "not supported"
        if a is None and b is None:
            continue
        numeric = isinstance(a, (int, float)) and isinstance(b, (int, float))
        ratio, words = ratio_text(kind, a, b) if numeric else (None, "")
        rows.append(
            {
                "measure": label,
                "unit": UNITS[kind],
                "ours": a,
                "theirs": b,
                "ratio": ratio,
                "verdict": words,
            }
        )
    return rows


def cell(value) -> str:
    """A figure for the table."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"
    return str(value)


def comparison_lines(rows: list[dict], ours_name: str) -> list[str]:
    """The comparison table as lines."""
    header = f"{'measure':<34} {'unit':>5} {ours_name:>14} {'Distribution':>14}  ratio ours/theirs"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['measure']:<34} {row['unit']:>5} {cell(row['ours']):>14} "
            f"{cell(row['theirs']):>14}  {row['verdict']}".rstrip()
        )
    return lines


def git_state() -> str:
    """The commit the work tree is at, and whether it has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
    except OSError:
        return "unknown"
    return head + (f" + uncommitted changes in {len(dirty)} file(s)" if dirty else "")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description="forge and CNCF Distribution 2.8, benchmarked side by side in one run.",
    )
    parser.add_argument("--size", type=rb.parse_size, default=rb.GiB, help="blob size (1GiB)")
    parser.add_argument("--chunk", type=rb.parse_size, default=16 * rb.MiB, help="PATCH (16MiB)")
    parser.add_argument(
        "--steps",
        type=rb.step_list,
        default=rb.STEPS,
        help=f"registry_bench steps, from {','.join(rb.STEPS)} (default: all)",
    )
    parser.add_argument("--storage", choices=("fs", "s3"), default="fs", help="fs or s3 (fs)")
    parser.add_argument(
        "--nodes", type=int, choices=(1, 2), default=1, help="forge nodes (2 needs s3)"
    )
    parser.add_argument("--parallel", type=int, default=16, help="simultaneous pulls (16)")
    parser.add_argument("--requests", type=int, default=200, help="manifest HEADs and GETs (200)")
    parser.add_argument("--seed", type=int, default=0, help="registry_bench --seed (0)")
    parser.add_argument("--json", metavar="FILE", help="write every figure here")
    parser.add_argument("--keep", action="store_true", help="leave the temp dir for inspection")
    args = parser.parse_args(argv)
    if args.nodes == 2 and args.storage != "s3":
        parser.error("--nodes 2 needs --storage s3 (nodes share the bucket, not a disk)")
    return args


def describe(args: argparse.Namespace, ours: dict, theirs: dict, s3: dict | None) -> list[str]:
    """The set-up, for the top of the output."""
    redirect = "on both: blob GETs answer 307 to a presigned S3 URL" if s3 else "n/a"
    if s3:
        storage = f"s3 (moto, bench/s3_server.py at {s3['endpoint']}; a bucket per registry)"
    else:
        storage = f"fs (local disk under {tempfile.gettempdir()})"
    nodes = f"{ours['nodes']} node(s) x {ours['workers_per_node']} gthread workers x 4 threads"
    if ours["nodes"] == 2:
        nodes += (
            f", behind nginx {ours['nginx']['url']} (round robin per request, no upstream "
            f"keepalive), PostgreSQL {ours['database'].rsplit('/', 1)[1]}, cache {ours['cache']}"
        )
    else:
        nodes += ", SQLite in its data dir"
    return [
        f"command: {shlex.join([sys.executable, *sys.argv])}",
        f"date:    {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        f"storage: {storage}; redirect {redirect}",
        f"ours:    forge {git_state()}, gunicorn -c gunicorn.conf.py, {nodes}; {ours['url']}",
        f"theirs:  {distribution_version()}, one process, no auth; {theirs['url']}",
        f"size {rb.human_size(args.size)}, chunk {rb.human_size(args.chunk)}, "
        f"steps {','.join(args.steps)}; MB = 10^6 bytes",
    ]


def main(argv: list[str] | None = None) -> int:
    """Set up, bench both servers, print and save the comparison, clean up; 0 if all passed."""
    args = parse_args(argv)
    interrupt_on_signals()
    stack = Stack(args.keep)
    document: dict = {"command": [sys.executable, *sys.argv], "ok": False}
    status = 1
    try:
        s3 = None
        if args.storage == "s3":
            progress("starting the S3 server (moto)")
            s3 = start_s3(stack)
        progress("starting our server")
        ours = start_forge(stack, args, s3)
        progress("starting Distribution")
        theirs = start_distribution(stack, s3)
        header = describe(args, ours, theirs, s3)
        common = bench_args(args)
        ours_text, ours_doc = run_bench(
            stack,
            "ours",
            ours,
            ["--repo", OURS_REPO, "--user", USER, "--password", PASSWORD],
            common,
        )
        theirs_text, theirs_doc = run_bench(
            stack, "theirs", theirs, ["--repo", THEIRS_REPO], common
        )
        rows = comparison(ours_doc, theirs_doc)
        ours_name = "ours x2 nodes" if args.nodes == 2 else "ours"
        out = [*header, "", "== ours", ours_text.rstrip(), "", "== Distribution"]
        out += [theirs_text.rstrip(), "", "== comparison", *comparison_lines(rows, ours_name)]
        balance = None
        if args.nodes == 2:
            balance = alternation(ours["nginx"]["access_log"])
            pairs = balance["consecutive_pairs"]
            out.append(
                f"\nnginx: {balance['patches']} PATCHes, per node {balance['patches_per_node']}; "
                f"{balance['consecutive_patches_on_other_node']} of {pairs} consecutive "
                "PATCHes went to the other node"
            )
        for name, doc in (("ours", ours_doc), ("Distribution", theirs_doc)):
            if not doc.get("ok"):
                out.append(f"\nFAILED ({name}): {doc.get('error')}")
                for log, excerpt in doc.get("server_log_excerpts", {}).items():
                    out.append(f"--- {log}\n{excerpt}")
        print("\n".join(out), flush=True)
        document.update(
            ok=bool(ours_doc.get("ok") and theirs_doc.get("ok")),
            header=header,
            options={k: v for k, v in vars(args).items() if k != "json"},
            ours={"server": ours, "bench": ours_doc},
            theirs={"server": theirs, "bench": theirs_doc},
            s3=s3,
            nginx_balance=balance,
            comparison=rows,
        )
        status = 0 if document["ok"] else 1
    except SetupError as exc:
        print(f"SETUP FAILED: {exc}", file=sys.stderr)
        document["error"] = str(exc)
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        document["error"] = "interrupted"
        status = 130
    finally:
        stack.cleanup()
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(document, fh, indent=2)
                fh.write("\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
