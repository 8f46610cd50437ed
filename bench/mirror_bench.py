"""Mirror benchmark: a layer pulled through a mirror, cold and warm, beside Distribution direct.

Starts CNCF Distribution 2.8 (Debian's docker-registry) as the upstream and our server
(SQLite, local disk, gunicorn as `make run` starts it), then for each round:

- pushes an image with one random layer of --size bytes to Distribution (new bytes each
  round, so no cache anywhere has them) and the same image to our server directly, as
  an ordinary owner's;
- makes a new mirror of Distribution and GETs the image's manifest through it (untimed:
  a client does that first, and it is what tells the mirror of the layer);
- times GETs of the layer: `direct` from Distribution, `cold` through the mirror (the
  mirror fetches from Distribution while it answers), `warm` through the mirror again,
  `local` from the ordinary owner's image; in alternating orders, cold always before
  warm.

Each GET is timed to its first body byte (TTFB) and to its last, read in 1 MiB pieces
and thrown away, over a new connection with Basic credentials. Medians of the rounds,
with the ratios the issue asks for: cold / direct (aim: within 1.3x) and warm / local
(aim: equal).

    .venv/bin/python bench/mirror_bench.py --size 1GiB --rounds 3
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import side_by_side as sbs

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PYTHON = str(VENV_BIN / "python")
GUNICORN = str(VENV_BIN / "gunicorn")
SKOPEO = "/usr/bin/skopeo"
USER, PASSWORD = "alice", "alice-pw"
READ_SIZE = 1024 * 1024
UPSTREAM_REPO = "bench/big"
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json"
)
sys.path.insert(0, str(ROOT))
from tests.e2e.layouts import make_image  # noqa: E402


def parse_size(text: str) -> int:
    """Bytes from "1GiB", "256MiB", "64KiB" or a plain number."""
    upper = text.strip().upper()
    for unit, factor in (("KIB", 1024), ("MIB", 1024**2), ("GIB", 1024**3)):
        if upper.endswith(unit):
            return int(float(upper[: -len(unit)]) * factor)
    return int(upper)


def start_forge(stack: sbs.Stack) -> dict:
    """Our server as `make run` serves it, on SQLite and local disk, allowed to reach
    loopback upstreams; its URL and environment.
    """
    env = stack.env(
        dict(
            sbs.clean_env(),
            FORGE_DATA_DIR=str(stack.dir("ours/data")),
            FORGE_MIRROR_ALLOWED_HOSTS="127.0.0.1",
        )
    )
    log = stack.root / "ours" / "setup.log"
    sbs.run_checked([PYTHON, "manage.py", "migrate", "--noinput"], env, "migrate", log)
    sbs.run_checked(
        [PYTHON, "manage.py", "createuser", USER, "--password", PASSWORD, "--admin"],
        env,
        "createuser",
        log,
    )
    port = stack.free_port()
    served = dict(env, HOST="127.0.0.1", PORT=str(port))
    gunicorn_log = stack.root / "ours" / "gunicorn.log"
    proc = stack.start(
        "forge",
        [GUNICORN, "-c", "gunicorn.conf.py", "forge.wsgi:application"],
        gunicorn_log,
        served,
    )
    waited = sbs.wait_ready(f"http://127.0.0.1:{port}", proc, gunicorn_log)
    sbs.progress(f"forge: pid {proc.pid}, port {port}, ready in {waited:.1f} s")
    return {"url": f"http://127.0.0.1:{port}", "env": env, "log": str(gunicorn_log)}


def skopeo_push(layout: Path, tag: str, url: str, repository: str, creds: str | None) -> None:
    cmd = [
        SKOPEO,
        "--insecure-policy",
        "copy",
        "-q",
        # As pushed: skopeo would otherwise compress the layer, with another digest.
        "--preserve-digests",
        "--dest-tls-verify=false",
        f"oci:{layout}:{tag}",
        f"docker://{url.split('//', 1)[1]}/{repository}:{tag}",
    ]
    if creds:
        cmd[4:4] = ["--dest-creds", creds]
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, timeout=1800)


def timed_get(url: str, path: str, *, auth: bool, accept: str = "") -> dict:
    """One GET over a new connection: seconds to the first body byte and to the last,
    and the bytes read.
    """
    host, port = url.split("//", 1)[1].split(":")
    headers = {"Accept": accept} if accept else {}
    if auth:
        pair = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        headers["Authorization"] = f"Basic {pair}"
    connection = http.client.HTTPConnection(host, int(port), timeout=600)
    started = time.perf_counter()
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        if response.status != 200:
            raise sbs.SetupError(f"GET {url}{path}: {response.status} {response.read(2000)!r}")
        first = response.read(1)
        ttfb = time.perf_counter() - started
        size = len(first)
        while True:
            piece = response.read(READ_SIZE)
            if not piece:
                break
            size += len(piece)
        total = time.perf_counter() - started
    finally:
        connection.close()
    return {"ttfb": ttfb, "total": total, "bytes": size}


def one_round(stack: sbs.Stack, forge: dict, upstream: str, size: int, index: int) -> dict:
    layout = stack.dir(f"round{index}/layout")
    tag = f"r{index}"
    info = make_image(layout, tag, layers=[{"big.bin": os.urandom(size)}], gzip=False)
    layer, layer_size = info.layers[0].digest, info.layers[0].size
    skopeo_push(layout, tag, upstream, UPSTREAM_REPO, None)
    skopeo_push(layout, tag, forge["url"], f"{USER}/local", f"{USER}:{PASSWORD}")
    mirror = f"m{index}"
    sbs.run_checked(
        [PYTHON, "manage.py", "createmirror", mirror, "--upstream", upstream],
        forge["env"],
        "createmirror",
        stack.root / "ours" / "setup.log",
    )
    manifest_path = f"/v2/{mirror}/{UPSTREAM_REPO}/manifests/{tag}"
    manifest = timed_get(forge["url"], manifest_path, auth=True, accept=MANIFEST_TYPES)
    figures = {"manifest_cold": manifest}
    paths = {
        "direct": (upstream, f"/v2/{UPSTREAM_REPO}/blobs/{layer}", False),
        "cold": (forge["url"], f"/v2/{mirror}/{UPSTREAM_REPO}/blobs/{layer}", True),
        "warm": (forge["url"], f"/v2/{mirror}/{UPSTREAM_REPO}/blobs/{layer}", True),
        "local": (forge["url"], f"/v2/{USER}/local/blobs/{layer}", True),
    }
    # Cold comes before warm, by definition; the rest alternate from round to round,
    # so that neither side always goes first (with the disk still writing back what
    # the one before it wrote, say).
    order = (
        ["direct", "cold", "warm", "local"] if index % 2 else ["cold", "direct", "local", "warm"]
    )
    for name in order:
        url, path, auth = paths[name]
        figures[name] = timed_get(url, path, auth=auth)
    for name in ("direct", "cold", "warm", "local"):
        if figures[name]["bytes"] != layer_size:
            raise sbs.SetupError(f"{name}: read {figures[name]['bytes']} bytes, not {layer_size}")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1GiB", help="the layer's size (1GiB, 256MiB, …)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--data-root", default=None, help="where the temp dir goes")
    parser.add_argument("--json", default="", help="also write the figures here")
    args = parser.parse_args()
    size = parse_size(args.size)
    stack = sbs.Stack(args.keep, args.data_root, prefix="mirror_bench-")
    sbs.interrupt_on_signals()
    try:
        upstream = sbs.start_distribution(stack, None)["url"]
        forge = start_forge(stack)
        rounds = []
        for index in range(1, args.rounds + 1):
            sbs.progress(f"round {index} of {args.rounds}: {size} bytes")
            rounds.append(one_round(stack, forge, upstream, size, index))
            sbs.progress(json.dumps(rounds[-1]))
    finally:
        stack.cleanup()
    medians = {
        name: {key: statistics.median(r[name][key] for r in rounds) for key in ("ttfb", "total")}
        for name in ("manifest_cold", "direct", "cold", "warm", "local")
    }
    lines = [
        f"layer {size} bytes, {args.rounds} rounds (medians); Distribution "
        f"{sbs.distribution_version()}",
        f"{'pull':<14}{'TTFB ms':>10}{'total s':>10}{'MB/s':>9}",
    ]
    for name, figure in medians.items():
        rate = "" if name == "manifest_cold" else f"{size / figure['total'] / 1e6:9.0f}"
        lines.append(f"{name:<14}{figure['ttfb'] * 1000:>10.1f}{figure['total']:>10.2f}{rate}")
    cold, direct = medians["cold"], medians["direct"]
    warm, local = medians["warm"], medians["local"]
    lines += [
        f"cold / direct: total {cold['total'] / direct['total']:.2f}x, "
        f"TTFB {cold['ttfb'] * 1000:.1f} ms against {direct['ttfb'] * 1000:.1f} ms "
        "(aim: total 1.3x at most)",
        f"warm / local: total {warm['total'] / local['total']:.2f}x, "
        f"TTFB {warm['ttfb'] / local['ttfb']:.2f}x (aim: 1.0x)",
    ]
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({"rounds": rounds, "medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
