"""Benchmark our registry (forge) and CNCF Distribution 2.8 side by side, in one run.

Starts both servers on free loopback ports in a temporary directory (local disk, or an S3
bucket each on one moto server), runs bench/registry_bench.py against each with the same
options --rounds times, alternating (ours, theirs, ours, theirs, ...), each round with its
own seed and after a sync and a pause, prints every round's figures and a comparison
(each server's median over the rounds, its min-max, the ratio of the medians), and stops
everything it started, also on Ctrl-C or a failure.

    .venv/bin/python bench/side_by_side.py --steps manifest,monolithic,chunked,chunked-new-conn,pull
    .venv/bin/python bench/side_by_side.py --rounds 5 --data-root /dev/shm --steps monolithic
    .venv/bin/python bench/side_by_side.py --storage s3 --size 256MiB --nodes 2 \
        --steps chunked-new-conn,monolithic --json /tmp/sbs.json

--data-root puts the temp dir (both servers' data, and TMPDIR for every process started)
under another directory, e.g. /dev/shm to take the disk out of the measurement. --nodes 2
(with s3) runs two forge servers, each with its own data dir, on one fresh PostgreSQL
database, one Redis cache and one bucket, behind nginx (round robin per request);
Distribution stays one process. Standard library, plus boto3 (S3 runs) and psycopg and
redis (two-node runs) from the project venv. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
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
import statistics
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

    def __init__(self, keep: bool, data_root: str | None = None, prefix: str = "side_by_side-"):
        self.keep = keep
        # Everything lives under root: both servers' data, logs, configs, and (through
        # TMPDIR) any temp file a process started here makes, e.g. moto's spooled objects.
        self.root = Path(tempfile.mkdtemp(prefix=prefix, dir=data_root))
        # The environment our server was set up with (node 1), for more manage.py commands.
        self.forge_env: dict | None = None
        self.tmp = self.dir("tmp")
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.undo: list[tuple[str, object]] = []  # (what, callable) run at clean-up
        self._ports: set[int] = set()

    def env(self, env: dict | None = None) -> dict:
        """env (default: ours) with TMPDIR in the run's temp dir."""
        return dict(os.environ if env is None else env, TMPDIR=str(self.tmp))

    def alive(self, pid: int) -> bool:
        """Whether a process this run started (by pid) is still running."""
        return any(proc.pid == pid and proc.poll() is None for _, proc in self.processes)

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
                env=self.env(env),
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


def start_forge(
    stack: Stack,
    args: argparse.Namespace,
    s3: dict | None,
    *,
    postgres: bool = False,
    redis_cache: bool = False,
) -> dict:
    """Our server (or two behind nginx): migrate, create the user, gunicorn; its URL and pids.

    Two nodes always share a fresh PostgreSQL database and a Redis cache; one node uses
    SQLite and the file cache in its data dir unless postgres or redis_cache ask for those.
    """
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
    shared = stack.env(shared)  # migrate and createuser too
    info: dict = {"nodes": args.nodes, "workers_per_node": forge_workers(), "logs": []}
    if args.nodes == 2 or postgres:
        shared["DATABASE_URL"] = info["database"] = create_database(stack)
    if args.nodes == 2 or redis_cache:
        shared["FORGE_CACHE_URL"] = info["cache"] = claim_redis_db(stack)
    if args.nodes == 2:
        shared["FORGE_SECRET_KEY"] = secrets.token_urlsafe(50)
    envs = []
    for node in range(1, args.nodes + 1):
        env = dict(shared, FORGE_DATA_DIR=str(stack.dir(f"ours{node}/data")))
        envs.append(env)
    stack.forge_env = envs[0]
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


def log_size(path: str) -> int:
    """The size of a log file now (0 if it does not exist yet)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def alternation(access_log: str, start: int = 0, end: int | None = None) -> dict:
    """Which node each request went to, from nginx's log (the bytes start to end, i.e. one
    run's requests); PATCHes that alternated.
    """
    patches, sequence = [], []
    pattern = re.compile(r'"(\w+) (\S+) [^"]*" (\d+) .* up=(\S+)')
    with open(access_log, "rb") as fh:
        fh.seek(start)
        text = fh.read(None if end is None else end - start).decode(errors="replace")
        for line in text.splitlines():
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

DIRTY_LIMIT_MIB = 64  # a run starts once Dirty + Writeback is under this ...
SETTLE_CAP = 60.0  # ... or after this many seconds, whichever comes first


def dirty_mib() -> float | None:
    """Dirty + Writeback from /proc/meminfo in MiB: page cache not yet on disk."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
        kib = sum(int(fields[key].split()[0]) for key in ("Dirty", "Writeback"))
    except (OSError, KeyError, ValueError):
        return None
    return kib / 1024


def warm_memory(gib: float) -> float:
    """Write to every page of `gib` GiB of memory once, in a process that then exits;
    the seconds it took.

    On a virtual machine whose host backs guest memory only when it is first touched
    (Firecracker does), writing into never-used pages runs at ~300 MB/s here, against
    ~1 GB/s into pages used before: a 1 GiB push into the page cache (or /dev/shm) ran
    at 910, 570, 290, 310 MB/s on four pushes in a row, and at 860-1000 again once the
    earlier blobs were deleted. That caps whichever server writes faster. Touched once
    and freed, the pages stay backed, and the page cache reuses them.
    """
    started = time.monotonic()
    code = (
        "import mmap, sys\n"
        "size = int(sys.argv[1])\n"
        "buf = mmap.mmap(-1, size)\n"
        "for start in range(0, size, 1 << 30):\n"
        "    view = memoryview(buf)[start:start + (1 << 30)]\n"
        "    view[::mmap.PAGESIZE] = b'\\x01' * len(view[::mmap.PAGESIZE])\n"
    )
    subprocess.run([sys.executable, "-c", code, str(int(gib * rb.GiB))], check=True)
    return time.monotonic() - started


def drop_page_cache() -> bool:
    """Drop the clean page cache (root only), so the next run writes into freed pages
    (backed, after warm_memory) rather than pages the kernel must find; whether it did.
    """
    try:
        with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as fh:
            fh.write("1\n")
    except OSError:
        return False
    return True


def settle(pause: float, *, drop_cache: bool = False) -> dict:
    """sync, then wait at least pause s and until Dirty + Writeback < 64 MiB (60 s at most);
    with drop_cache, drop the clean page cache after the sync.

    So that one run's writeback (and the kernel's throttling of writers while it lasts)
    does not land in the next run.
    """
    before = dirty_mib()
    started = time.monotonic()
    os.sync()
    dropped = drop_page_cache() if drop_cache else None
    synced = time.monotonic() - started
    cap = max(SETTLE_CAP, pause)
    while True:
        waited = time.monotonic() - started
        now = dirty_mib()
        if waited >= cap or (waited >= pause and (now is None or now < DIRTY_LIMIT_MIB)):
            break
        time.sleep(0.25)
    return {
        "dirty_writeback_before_mib": None if before is None else round(before, 1),
        "sync_s": round(synced, 2),
        "page_cache_dropped": dropped,
        "waited_s": round(waited, 1),
        "dirty_writeback_after_mib": None if now is None else round(now, 1),
        "capped": waited >= cap and (now is None or now >= DIRTY_LIMIT_MIB),
    }


def bench_args(args: argparse.Namespace, seed: int) -> list[str]:
    """The registry_bench options both servers get in the round of this seed."""
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
        str(seed),
    ]


def run_bench(
    stack: Stack,
    run: dict,
    server: dict,
    extra: list[str],
    common: list[str],
    pause: float,
    *,
    drop_cache: bool = False,
) -> dict:
    """Settle, then run registry_bench against one server; run, filled in with the results."""
    name, number = run["server"], run["round"]
    out_json = stack.root / f"bench-{name}-{number}.json"
    out_table = stack.root / f"bench-{name}-{number}.txt"
    pids = ",".join(str(p) for p in server["pids"])
    cmd = [PYTHON, str(BENCH), "--url", server["url"], *extra, *common, "--pid", pids]
    cmd += ["--json", str(out_json)]
    dead = [pid for pid in server["pids"] if not stack.alive(pid)]
    if dead:
        run.update(ok=False, seconds=None, table="", settle=None)
        run["bench"] = {
            "ok": False,
            "error": f"not run: server process(es) {dead} have exited",
            "server_log_excerpts": {log: log_excerpt(Path(log)) for log in server["logs"]},
        }
        progress(f"round {number} {name}: skipped, {run['bench']['error']}")
        return run
    run["settle"] = settle(pause, drop_cache=drop_cache)
    progress(
        f"round {number} {name} (seed {run['seed']}): "
        f"{describe_settle(run['settle'])}; {shlex.join(cmd)}"
    )
    access_log = server.get("nginx", {}).get("access_log")
    log_start = log_size(access_log) if access_log else 0
    started = time.monotonic()
    label = f"registry_bench ({name}, round {number})"
    proc = stack.start(label, cmd, out_table, stderr=None)
    proc.wait()
    stack.processes.remove((label, proc))
    run["seconds"] = round(time.monotonic() - started, 1)
    if access_log:
        time.sleep(0.2)  # nginx logs a request after answering it
        run["nginx_balance"] = alternation(access_log, log_start, log_size(access_log))
    run["table"] = out_table.read_text(errors="replace")
    try:
        document = json.loads(out_json.read_text())
    except (OSError, ValueError):
        document = {"ok": False, "error": f"registry_bench exited {proc.returncode}, no JSON"}
    if not document.get("ok"):
        excerpts = {log: log_excerpt(Path(log)) for log in server.get("logs", [])}
        document["server_log_excerpts"] = excerpts
    run.update(ok=bool(document.get("ok")), bench=document)
    return run


def describe_settle(fig: dict) -> str:
    """What the pause before a run found, in words."""

    def mib(value) -> str:
        return "?" if value is None else f"{value:.0f}"

    text = (
        f"Dirty+Writeback {mib(fig['dirty_writeback_before_mib'])} MiB left before it, "
        f"sync {fig['sync_s']:.1f} s, {mib(fig['dirty_writeback_after_mib'])} MiB "
        f"after {fig['waited_s']:.1f} s"
    )
    return text + (" (cap reached)" if fig["capped"] else "")


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
NOT_SUPPORTED = "not supported"


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


def is_number(value) -> bool:
    """A figure (not None, not a word, not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def figure(document: dict, path: str):
    """One round's figure for a measure: a number, 'not supported', or None."""
    single_post = path.startswith("push_single_post") and "push_single_post" in document
    if single_post and not dig(document, "push_single_post.supported"):
        return NOT_SUPPORTED
    return dig(document, path)


def summary(values: list) -> dict:
    """Median, min and max of the rounds' figures, and how many rounds had one."""
    numbers = [v for v in values if is_number(v)]
    if not numbers:
        word = next((v for v in values if v is not None), None)
        return {"median": word, "min": None, "max": None, "n": 0}
    median = statistics.median(numbers)
    return {"median": round(median, 2), "min": min(numbers), "max": max(numbers), "n": len(numbers)}


def comparison(ours: list[dict], theirs: list[dict]) -> list[dict]:
    """One row per measure either side has: each side's median over rounds, its min and max,
    every round's figure, and the ratio of the medians.
    """
    rows = []
    for label, path, kind in MEASURES:
        a = [figure(doc, path) for doc in ours]
        b = [figure(doc, path) for doc in theirs]
        if all(v is None for v in a + b):
            continue
        sa, sb = summary(a), summary(b)
        numeric = is_number(sa["median"]) and is_number(sb["median"])
        ratio, words = ratio_text(kind, sa["median"], sb["median"]) if numeric else (None, "")
        row = {"measure": label, "unit": UNITS[kind], "kind": kind}
        for side, fig, values in (("ours", sa, a), ("theirs", sb, b)):
            row[side] = fig["median"]
            row.update({f"{side}_min": fig["min"], f"{side}_max": fig["max"]})
            row.update({f"{side}_n": fig["n"], f"{side}_rounds": values})
        row.update(ratio=None if ratio is None else round(ratio, 3), verdict=words)
        rows.append(row)
    return rows


def cell(value) -> str:
    """A figure for the table."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"
    return str(value)


def short(value) -> str:
    """A figure in few characters, for min-max and the per-round table."""
    if value is None:
        return "-"
    if value == NOT_SUPPORTED:
        return "n/s"
    if not is_number(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def span(row: dict, side: str, rounds: int) -> str:
    """'min-max' of one side's rounds, with n= when some rounds have no figure."""
    if not row[f"{side}_n"]:
        return ""
    text = f"{short(row[f'{side}_min'])}-{short(row[f'{side}_max'])}"
    return text + (f" n={row[f'{side}_n']}" if row[f"{side}_n"] < rounds else "")


def comparison_lines(rows: list[dict], ours_name: str, rounds: int) -> list[str]:
    """The comparison table as lines: medians, min-max, ratio of the medians."""
    header = (
        f"{'measure':<34} {'unit':>5} {ours_name:>13} {'min-max':>15} "
        f"{'Distribution':>12} {'min-max':>15}  ratio of medians"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['measure']:<34} {row['unit']:>5} {cell(row['ours']):>13} "
            f"{span(row, 'ours', rounds):>15} {cell(row['theirs']):>12} "
            f"{span(row, 'theirs', rounds):>15}  {row['verdict']}".rstrip()
        )
    return lines


def rounds_lines(rows: list[dict], rounds: int) -> list[str]:
    """Every round's figure of every measure, ours then theirs, rounds in order."""
    names = [f"ours {i}" for i in range(1, rounds + 1)]
    names += [f"theirs {i}" for i in range(1, rounds + 1)]
    header = f"{'measure':<34} {'unit':>5} " + " ".join(f"{name:>8}" for name in names)
    lines = [header, "-" * len(header)]
    for row in rows:
        values = row["ours_rounds"] + row["theirs_rounds"]
        lines.append(
            f"{row['measure']:<34} {row['unit']:>5} "
            + " ".join(f"{short(value):>8}" for value in values)
        )
    return lines


def runs_lines(runs: list[dict]) -> list[str]:
    """One line per run, in the order they ran: seed, the pause before it, time, outcome."""
    lines = []
    for run in runs:
        took = "" if run.get("seconds") is None else f"; ran {run['seconds']:.0f} s"
        outcome = "ok" if run["ok"] else f"FAILED: {run['bench'].get('error')}"
        settled = f"{describe_settle(run['settle'])}{took}; " if run["settle"] else ""
        lines.append(
            f"round {run['round']}  {run['server']:<6}  seed {run['seed']:<3} {settled}{outcome}"
        )
    return lines


# --- where, what, which code ----------------------------------------------------------------


def command_line() -> str:
    """The command line exactly as typed (/proc/self/cmdline), and the directory it ran in."""
    try:
        with open("/proc/self/cmdline", "rb") as fh:
            argv = [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        argv = [sys.executable, *sys.argv]
    return f"{shlex.join(argv)}  (in {os.getcwd()})"


def git_state() -> dict:
    """The commit the work tree is at ('abc1234', '+dirty' if it has changes) and what changed."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
        ).stdout.splitlines()
        diff = subprocess.run(["git", "diff", "HEAD"], cwd=ROOT, capture_output=True).stdout
    except OSError:
        return {"commit": "unknown", "changed": []}
    paths = [line[3:] for line in changed]
    # Tells apart two states with the same changed paths but different changes in them.
    diff_id = hashlib.sha256(diff).hexdigest()[:12] if paths else None
    return {"commit": head + ("+dirty" if paths else ""), "changed": paths, "diff": diff_id}


def git_text(state: dict, most: int = 6) -> str:
    """'abc1234+dirty (a.py, b.py, 3 more)'."""
    paths = state["changed"]
    if not paths:
        return state["commit"]
    more = f", {len(paths) - most} more" if len(paths) > most else ""
    return f"{state['commit']} ({', '.join(paths[:most])}{more})"


def mount_of(path: Path) -> str:
    """'tmpfs at /dev/shm' or 'ext4 on /dev/vda at /': the file system path lives on."""
    real = os.path.realpath(path)
    best = ("", "?", "?")
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                device, point, fstype = line.split()[:3]
                point = point.replace("\\040", " ")
                inside = real == point or real.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best[0]):
                    best = (point, device, fstype)
    except OSError:
        return "file system unknown"
    point, device, fstype = best
    return f"{fstype} at {point}" if fstype == "tmpfs" else f"{fstype} on {device} at {point}"


def blobs_per_run(args: argparse.Namespace) -> int:
    """How many --size blobs one run leaves in a server's storage."""
    steps = set(args.steps)
    count = len(steps & {"monolithic", "single-post", "chunked", "chunked-new-conn"})
    if "monolithic" not in steps and steps & {"pull", "parallel"}:
        count += 1
    return count


def check_room(stack: Stack, args: argparse.Namespace) -> None:
    """Warn when the data dir's file system may not hold every round's blobs."""
    needed = blobs_per_run(args) * args.size * args.rounds * 2
    free = shutil.disk_usage(stack.root).free
    if needed > free * 0.9:
        progress(
            f"WARNING: {needed / rb.GiB:.1f} GiB of blobs to store, "
            f"{free / rb.GiB:.1f} GiB free under {stack.root}"
        )


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
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of round 1; round k uses seed+k-1 (0)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs per server, alternating ours/theirs (3)"
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=5.0,
        help="seconds to wait at least after the sync before each run (5)",
    )
    parser.add_argument(
        "--data-root",
        metavar="DIR",
        help="make the run's temp dir (data, logs, TMPDIR) under DIR, e.g. /dev/shm "
        "(default: the system temp dir)",
    )
    parser.add_argument(
        "--warm-memory",
        type=float,
        default=0.0,
        metavar="GIB",
        help="write to this much memory once before the first run, and drop the page "
        "cache before each run (root): on a VM whose host backs memory on first touch, "
        "writes into never-used pages are slow for both servers (0: off)",
    )
    parser.add_argument("--json", metavar="FILE", help="write every figure here")
    parser.add_argument("--keep", action="store_true", help="leave the temp dir for inspection")
    args = parser.parse_args(argv)
    if args.nodes == 2 and args.storage != "s3":
        parser.error("--nodes 2 needs --storage s3 (nodes share the bucket, not a disk)")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.pause < 0:
        parser.error("--pause must not be negative")
    if args.seed < 0 or args.seed + args.rounds > 1 << 22:
        parser.error("--seed + --rounds - 1 must be between 0 and 4194303")
    if args.data_root and not (
        os.path.isdir(args.data_root) and os.access(args.data_root, os.W_OK)
    ):
        parser.error(f"--data-root {args.data_root}: not a writable directory")
    return args


def describe(
    args: argparse.Namespace, stack: Stack, git: dict, ours: dict, theirs: dict, s3: dict | None
) -> list[str]:
    """The set-up, for the top of the output."""
    redirect = "on both: blob GETs answer 307 to a presigned S3 URL" if s3 else "n/a"
    if s3:
        storage = (
            f"s3 (moto, bench/s3_server.py at {s3['endpoint']}; a bucket per registry; moto "
            "keeps objects up to 5 MiB in memory and spools larger ones to files in TMPDIR)"
        )
    else:
        storage = "fs (each server's data dir in the data dir)"
    nodes = (
        f"{ours['nodes']} node(s) x {ours['workers_per_node']} ForgeWorker processes "
        "(a quick lane, 16 transfer threads)"
    )
    if ours["nodes"] == 2:
        nodes += (
            f", behind nginx {ours['nginx']['url']} (round robin per request, no upstream "
            f"keepalive), PostgreSQL {ours['database'].rsplit('/', 1)[1]}, cache {ours['cache']}"
        )
    else:
        nodes += ", SQLite in its data dir"
    last_seed = args.seed + args.rounds - 1
    return [
        f"command: {command_line()}",
        f"commit:  {git_text(git)}",
        f"date:    {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        f"data:    {stack.root} ({mount_of(stack.root)}); TMPDIR={stack.tmp} for every "
        "process started here",
        f"storage: {storage}; redirect {redirect}",
        f"ours:    forge {git['commit']}, gunicorn -c gunicorn.conf.py, {nodes}; {ours['url']}",
        f"theirs:  {distribution_version()}, one process, no auth; {theirs['url']}",
        f"size {rb.human_size(args.size)}, chunk {rb.human_size(args.chunk)}, "
        f"steps {','.join(args.steps)}; MB = 10^6 bytes",
        f"rounds:  {args.rounds}, alternating ours, theirs against the same servers; round k "
        f"uses --seed {args.seed}+k-1 (seeds {args.seed}..{last_seed}: no blob repeats); "
        f"before each run: sync, then at least {args.pause:g} s and until Dirty+Writeback "
        f"< {DIRTY_LIMIT_MIB} MiB (at most {SETTLE_CAP:.0f} s)",
    ]


def failure_lines(runs: list[dict]) -> list[str]:
    """Each failed run's error and its server's log excerpt (each excerpt shown once)."""
    lines, shown = [], set()
    for run in runs:
        if run["ok"]:
            continue
        name = "ours" if run["server"] == "ours" else "Distribution"
        lines.append(f"\nFAILED ({name}, round {run['round']}): {run['bench'].get('error')}")
        for log, excerpt in run["bench"].get("server_log_excerpts", {}).items():
            if (log, excerpt) in shown:
                lines.append(f"--- {log}: the same excerpt as above")
                continue
            shown.add((log, excerpt))
            lines.append(f"--- {log}\n{excerpt}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Set up, bench both servers round by round, print and save the comparison, clean up;
    0 if every run passed.
    """
    args = parse_args(argv)
    interrupt_on_signals()
    git = git_state()  # the code the servers are about to load
    stack = Stack(args.keep, args.data_root)
    document: dict = {
        "command": command_line(),
        "argv": [sys.executable, *sys.argv],
        "git": {"start": git},
        "ok": False,
    }
    status = 1
    try:
        check_room(stack, args)
        s3 = None
        if args.storage == "s3":
            progress("starting the S3 server (moto)")
            s3 = start_s3(stack)
        progress("starting our server")
        ours = start_forge(stack, args, s3)
        progress("starting Distribution")
        theirs = start_distribution(stack, s3)
        header = describe(args, stack, git, ours, theirs, s3)
        if args.warm_memory > 0:
            progress(f"writing to {args.warm_memory:g} GiB of memory once")
            took = warm_memory(args.warm_memory)
            header.append(
                f"memory:  {args.warm_memory:g} GiB written once before the first run "
                f"({took:.1f} s), the page cache dropped after each run's sync"
            )
        servers = {
            "ours": (ours, ["--repo", OURS_REPO, "--user", USER, "--password", PASSWORD]),
            "theirs": (theirs, ["--repo", THEIRS_REPO]),
        }
        runs: list[dict] = []
        for number in range(1, args.rounds + 1):
            seed = args.seed + number - 1
            for name, (server, extra) in servers.items():
                run = {"round": number, "server": name, "seed": seed}
                runs.append(run)
                run_bench(
                    stack,
                    run,
                    server,
                    extra,
                    bench_args(args, seed),
                    args.pause,
                    drop_cache=args.warm_memory > 0,
                )
        docs = {name: [run["bench"] for run in runs if run["server"] == name] for name in servers}
        rows = comparison(docs["ours"], docs["theirs"])
        ours_name = "ours x2 nodes" if args.nodes == 2 else "ours"
        out = [*header, "", "== runs, in the order they ran", *runs_lines(runs)]
        out += ["", f"== comparison: median of {args.rounds} round(s), min-max over the rounds"]
        out += comparison_lines(rows, ours_name, args.rounds)
        out += ["", "== every round (theirs = Distribution; n/s = not supported)"]
        out += rounds_lines(rows, args.rounds)
        balance = None
        if args.nodes == 2:
            balance = alternation(ours["nginx"]["access_log"])
            per_round = ", ".join(
                f"{b['consecutive_patches_on_other_node']}/{b['consecutive_pairs']}"
                for b in (run.get("nginx_balance") for run in runs if run["server"] == "ours")
                if b
            )
            out.append(
                f"\nnginx: {balance['patches']} PATCHes in all, per node "
                f"{balance['patches_per_node']}; consecutive PATCHes of one push that went "
                f"to the other node, per round: {per_round}"
            )
        out += failure_lines(runs)
        git_end = git_state()
        document["git"]["end"] = git_end
        if git_end != git:
            out.append(
                f"\nnote: the work tree changed during the run: now {git_text(git_end)}; "
                f"the servers loaded {git['commit']} at start"
            )
        print("\n".join(out), flush=True)
        document.update(
            ok=all(run["ok"] for run in runs),
            header=header,
            options={k: v for k, v in vars(args).items() if k != "json"},
            data_dir=str(stack.root),
            ours={"server": ours},
            theirs={"server": theirs},
            runs=runs,
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
