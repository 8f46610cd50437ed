"""What slow and idle clients do to everyone else: forge vs Distribution, in one run.

Starts our server as `make run` does and CNCF Distribution 2.8 (bench/side_by_side.py's
machinery), then for each server, each kind of slow client and each count: opens that
many connections that

- `idle`: connect and send nothing;
- `head`: send a request head a byte a second, never finishing it;
- `body`: send a whole upload head (`POST .../blobs/uploads/?digest=`, Content-Length
  100000) and then its body a byte a second;

and while they are open times what a normal client gets: `GET /v2/` on a new connection
(ours with Basic auth), and a 1 MiB push (POST, then PUT with the body), --probes
times each. Reports the
p50 and the worst of each, failures, and how many of the slow connections the server
had closed when the probes ended.

    .venv/bin/python bench/slow_clients.py
    .venv/bin/python bench/slow_clients.py --counts 20,200,1000 --kinds head,body

Standard library only; needs docker-registry. See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import os
import selectors
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import side_by_side as sbs

KINDS = ("idle", "head", "body")
PUSH_SIZE = 1024 * 1024
TRICKLE_INTERVAL = 1.0
PROBE_TIMEOUT = 30.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="20,200,1000", help="slow connections, comma-separated")
    parser.add_argument("--kinds", default=",".join(KINDS), help="idle, head, body")
    parser.add_argument("--probes", type=int, default=10, help="timed requests of each sort")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds before the probes")
    parser.add_argument("--keep", action="store_true", help="leave the temp dir")
    parser.add_argument("--data-root", help="make the temp dir under this directory")
    args = parser.parse_args(argv)
    args.counts = [int(count) for count in args.counts.split(",")]
    args.kinds = [kind for kind in args.kinds.split(",") if kind]
    unknown = set(args.kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    return args


class Server:
    def __init__(self, name: str, url: str, auth: str | None, repo: str):
        self.name, self.url, self.auth, self.repo = name, url, auth, repo
        host, port = url.removeprefix("http://").split(":")
        self.address = (host, int(port))

    def headers(self) -> dict:
        return {"Authorization": self.auth} if self.auth else {}


class Tricklers:
    """`count` slow connections of one kind, fed a byte a second by one thread."""

    def __init__(self, server: Server, kind: str, count: int):
        self.server, self.kind = server, kind
        self.sockets: list[socket.socket] = []
        self.closed = 0
        self.refused = 0
        self._stop = threading.Event()
        for _ in range(count):
            try:
                sock = socket.create_connection(server.address, timeout=5)
            except OSError:
                self.refused += 1
                continue
            sock.sendall(self.opening())
            sock.setblocking(False)
            self.sockets.append(sock)
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def opening(self) -> bytes:
        auth = f"Authorization: {self.server.auth}\r\n" if self.server.auth else ""
        if self.kind == "head":
            return b"GET /v2/ HTTP/1.1\r\n"
        if self.kind == "body":
            return (
                f"POST /v2/{self.server.repo}/blobs/uploads/?digest=sha256:{'0' * 64} HTTP/1.1\r\n"
                f"Host: bench\r\n{auth}Content-Length: 100000\r\n\r\n"
            ).encode()
        return b""

    def _feed(self) -> None:
        byte = b"x" if self.kind == "body" else b"X-Slow: 1\r\n"[:1]
        selector = selectors.DefaultSelector()
        for sock in self.sockets:
            selector.register(sock, selectors.EVENT_READ)
        open_ = set(self.sockets)
        while not self._stop.wait(TRICKLE_INTERVAL):
            for key, _ in selector.select(0):
                try:
                    data = key.fileobj.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    selector.unregister(key.fileobj)
                    open_.discard(key.fileobj)
                    self.closed += 1
            if self.kind != "idle":
                for sock in list(open_):
                    try:
                        sock.send(byte)
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        selector.unregister(sock)
                        open_.discard(sock)
                        self.closed += 1
        selector.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.sockets:
            sock.close()


def timed(function) -> tuple[float, str | None]:
    started = time.monotonic()
    try:
        problem = function()
    except OSError as error:
        problem = f"{type(error).__name__}: {error}"
    return time.monotonic() - started, problem


def probe_v2(server: Server) -> str | None:
    connection = http.client.HTTPConnection(*server.address, timeout=PROBE_TIMEOUT)
    try:
        connection.request("GET", "/v2/", headers=server.headers())
        response = connection.getresponse()
        response.read()
        return None if response.status == 200 else f"GET /v2/ answered {response.status}"
    finally:
        connection.close()


def push(server: Server) -> str | None:
    """A 1 MiB blob as POST then PUT ?digest= with the body (Distribution 2.8 takes no
    single-POST upload).
    """
    data = os.urandom(PUSH_SIZE)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    connection = http.client.HTTPConnection(*server.address, timeout=PROBE_TIMEOUT)
    try:
        connection.request("POST", f"/v2/{server.repo}/blobs/uploads/", headers=server.headers())
        response = connection.getresponse()
        response.read()
        if response.status != 202:
            return f"upload start answered {response.status}"
        location = response.getheader("Location", "")
        location = location.removeprefix(server.url)
        separator = "&" if "?" in location else "?"
        headers = {**server.headers(), "Content-Type": "application/octet-stream"}
        connection.request("PUT", f"{location}{separator}digest={digest}", data, headers)
        response = connection.getresponse()
        response.read()
        return None if response.status == 201 else f"push answered {response.status}"
    finally:
        connection.close()


def measure(server: Server, kind: str, count: int, args) -> dict:
    tricklers = Tricklers(server, kind, count)
    try:
        time.sleep(args.settle)
        figures: dict = {"kind": kind, "count": count, "refused": tricklers.refused}
        for name, function in (("GET /v2/", probe_v2), ("1 MiB push", push)):
            times, problems = [], []
            for _ in range(args.probes):
                took, problem = timed(lambda function=function: function(server))
                times.append(took * 1000)
                if problem:
                    problems.append(problem)
            figures[name] = {
                "p50": statistics.median(times),
                "max": max(times),
                "failed": len(problems),
                "problem": problems[0] if problems else None,
            }
        figures["closed"] = tricklers.closed
        return figures
    finally:
        tricklers.close()


def table(results: dict[str, list[dict]]) -> list[str]:
    lines = [
        "| slow clients | server | GET /v2/ p50 / max (ms) | 1 MiB push p50 / max (ms) "
        "| failed | closed by server |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    ours, theirs = results["ours"], results["theirs"]
    for mine, peer in zip(ours, theirs, strict=True):
        for name, row in (("ours", mine), ("Distribution", peer)):
            probe, pushed = row["GET /v2/"], row["1 MiB push"]
            failed = probe["failed"] + pushed["failed"]
            lines.append(
                f"| {row['count']} {row['kind']} | {name} "
                f"| {probe['p50']:.1f} / {probe['max']:.0f} "
                f"| {pushed['p50']:.1f} / {pushed['max']:.0f} "
                f"| {failed} | {row['closed']}/{row['count'] - row['refused']} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not os.path.exists(sbs.DISTRIBUTION):
        print("docker-registry is missing", file=sys.stderr)
        return 2
    sbs.interrupt_on_signals()
    stack = sbs.Stack(args.keep, args.data_root, prefix="slow_clients-")
    try:
        sbs.progress("starting our server and Distribution")
        ours = sbs.start_forge(stack, argparse.Namespace(nodes=1), None)
        theirs = sbs.start_distribution(stack, None)
        basic = base64.b64encode(f"{sbs.USER}:{sbs.PASSWORD}".encode()).decode()
        servers = [
            Server("ours", ours["url"], f"Basic {basic}", sbs.OURS_REPO),
            Server("theirs", theirs["url"], None, sbs.THEIRS_REPO),
        ]
        for server in servers:  # first requests (password hashing, imports) not timed
            probe_v2(server)
            push(server)
        results: dict[str, list[dict]] = {"ours": [], "theirs": []}
        for kind in args.kinds:
            for count in args.counts:
                for server in servers:
                    sbs.progress(f"{server.name}: {count} {kind}")
                    results[server.name].append(measure(server, kind, count, args))
        print(f"command: {sbs.command_line()}")
        print(f"commit:  {sbs.git_text(sbs.git_state())}")
        print(f"probes:  {args.probes} of each sort, {args.settle} s after the slow clients open")
        print("\n".join(table(results)))
        problems = [
            row[name]["problem"]
            for rows in results.values()
            for row in rows
            for name in ("GET /v2/", "1 MiB push")
            if row[name]["problem"]
        ]
        for problem in sorted(set(problems)):
            print(f"problem: {problem}")
        return 0
    finally:
        stack.cleanup()


if __name__ == "__main__":
    sys.exit(main())
