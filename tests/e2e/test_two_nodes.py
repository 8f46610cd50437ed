"""Two nodes behind nginx: each its own data dir, one PostgreSQL database, one S3 bucket
(moto's server), one Redis and one secret key; nginx sends requests round robin.

Proves what docs/scaling.md promises: any node continues any upload, a token from one
node is good on the other, sign-in failures count across both, and a tag pushed through
one is what the other answers at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
from urllib.parse import urlsplit

import pytest

from tests.ci import unavailable
from tests.redis_helpers import require_redis
from tests.s3_helpers import drop_bucket, make_bucket, s3_env

from .conftest import (
    SEED_USERS,
    Credentials,
    LiveRegistry,
    Tool,
    child_env,
    free_port,
    fresh_postgres_database,
    isolated_client_env,
    manage,
    require_tool,
    start_server,
    stop_server,
)
from .layouts import make_image, read_blob, read_tagged
from .nginx import nginx_in_front

MIB = 1024 * 1024
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
METRICS_TOKEN = "two-nodes-" + secrets.token_hex(8)


def postgres_base_url() -> str:
    """The server to make the cluster's database on: DATABASE_URL's if it is PostgreSQL."""
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith("postgres") else LOCAL_POSTGRES


def require_postgres(url: str) -> None:
    import psycopg

    try:
        psycopg.connect(url, dbname="postgres", connect_timeout=3).close()
    except psycopg.Error as error:
        unavailable(f"PostgreSQL is not reachable at {url}: {error}", "a missing PostgreSQL")


class Cluster:
    def __init__(self, front: LiveRegistry, nodes: list[LiveRegistry], nginx):
        self.front, self.nodes, self.nginx = front, nodes, nginx

    def requests_per_node(self, method: str, path_pattern: str) -> list[int]:
        """How many `method` requests whose path matches each node's access log shows."""
        pattern = re.compile(rf'"{method} {path_pattern}(?:\?[^ ]*)? HTTP/1\.[01]" \d{{3}} ')
        return [
            len(pattern.findall(node.log_path.read_text(errors="replace"))) for node in self.nodes
        ]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, s3_server, s3_admin):
    require_tool("skopeo")
    base_url = postgres_base_url()
    require_postgres(base_url)
    redis_url = require_redis()
    # A Redis database of its own, so another run on this machine counts nothing here.
    cache_url = redis_url.rsplit("/", 1)[0] + f"/{secrets.randbelow(15) + 1}"
    bucket = make_bucket(s3_admin)
    root = tmp_path_factory.mktemp("two-nodes")
    with contextlib.ExitStack() as stack:
        stack.callback(drop_bucket, s3_admin, bucket)
        database_url = stack.enter_context(fresh_postgres_database(base_url))
        # The front's address is every node's external URL: the token realm, the service.
        front_port = free_port()
        shared = {
            **s3_env(s3_server, bucket, FORGE_S3_ADDRESSING_STYLE="path"),
            "DATABASE_URL": database_url,
            "FORGE_CACHE_URL": cache_url,
            "FORGE_SECRET_KEY": secrets.token_urlsafe(50),
            "FORGE_EXTERNAL_URL": f"http://127.0.0.1:{front_port}",
            "FORGE_METRICS_TOKEN": METRICS_TOKEN,
            # Streamed through the nodes, so every byte of a pull crosses nginx.
            "FORGE_SERVE_DIRECT": "false",
        }
        envs = [{**child_env(root / f"node-{name}"), **shared} for name in ("a", "b")]
        manage(["migrate", "--noinput"], envs[0])
        for command in (
            ["createuser", "alice", "--email", "alice@example.com", "--password", "alice-pw"],
            ["createuser", "bob", "--password", "bob-pw"],
        ):
            manage(command, envs[0])
        nodes = []
        for name, env in zip(("a", "b"), envs, strict=True):
            (root / f"node-{name}").mkdir(exist_ok=True)
            log_path = root / f"node-{name}" / "gunicorn.log"
            process, port = start_server(env, log_path)
            stack.callback(stop_server, process)
            nodes.append(
                LiveRegistry(
                    url=f"http://127.0.0.1:{port}",
                    users=dict(SEED_USERS),
                    data_dir=root / f"node-{name}",
                    log_path=log_path,
                    server_env=env,
                    process=process,
                )
            )
        nginx = stack.enter_context(
            nginx_in_front(
                root / "nginx", [urlsplit(node.url).netloc for node in nodes], port=front_port
            )
        )
        front = LiveRegistry(url=nginx.url, users=dict(SEED_USERS))
        yield Cluster(front, nodes, nginx)


@pytest.fixture(scope="module")
def skopeo(cluster, tmp_path_factory) -> Tool:
    path = require_tool("skopeo")
    env = isolated_client_env(tmp_path_factory.mktemp("skopeo-two"), cluster.front.host)
    return Tool([path, "--insecure-policy"], env)


def upload_chunk(server: LiveRegistry, location: str, data: bytes, start: int, creds) -> str:
    """PATCH one chunk on a new connection to `server`; the next Location."""
    answer = server.request(
        "PATCH",
        location,
        creds=creds,
        body=data,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{start}-{start + len(data) - 1}",
            "Connection": "close",
        },
    )
    assert answer.status == 202, (server.url, answer.status, answer.body)
    assert answer.headers["Range"] == f"0-{start + len(data) - 1}"
    return urlsplit(answer.headers["Location"]).path


def test_skopeo_pushes_and_pulls_through_nginx(cluster, skopeo, tmp_path):
    layout = tmp_path / "layout"
    info = make_image(
        layout,
        "1.0",
        layers=[{"app/big.bin": os.urandom(6 * MIB)}, {"app/readme": b"two nodes\n"}],
    )
    reference = f"docker://{cluster.front.host}/alice/cluster/app:1.0"
    creds = cluster.front.alice.joined

    skopeo(
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        creds,
        f"oci:{layout}:1.0",
        reference,
    )
    skopeo(
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        creds,
        reference,
        f"oci:{tmp_path}/back:1.0",
    )

    entry = read_tagged(tmp_path / "back", "1.0")
    assert entry["digest"] == info.manifest_digest
    for digest in [info.config_digest, *info.layer_digests]:
        assert read_blob(tmp_path / "back", digest) == read_blob(layout, digest)
    # Round robin: both nodes took part in the push.
    assert all(
        count > 0 for count in cluster.requests_per_node(r"\w+", r"/v2/alice/cluster/app/\S+")
    )


def test_a_chunked_push_whose_patches_alternate_between_the_nodes(cluster):
    a, b = cluster.nodes
    creds = cluster.front.alice
    data = os.urandom(10 * MIB + 12345)
    chunk = 1 * MIB
    started = a.request("POST", "/v2/alice/cluster/chunked/blobs/uploads/", creds=creds)
    assert started.status == 202, started.body
    location = urlsplit(started.headers["Location"]).path

    for index, start in enumerate(range(0, len(data), chunk)):
        node = (a, b)[index % 2]
        location = upload_chunk(node, location, data[start : start + chunk], start, creds)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    finished = b.request("PUT", f"{location}?digest={digest}", creds=creds, body=b"")

    assert finished.status == 201, finished.body
    assert finished.headers["Docker-Content-Digest"] == digest
    pulled = cluster.front.request("GET", f"/v2/alice/cluster/chunked/blobs/{digest}", creds=creds)
    assert pulled.status == 200
    assert hashlib.sha256(pulled.body).hexdigest() == digest.split(":")[1]
    patches = cluster.requests_per_node("PATCH", r"/v2/alice/cluster/chunked/blobs/uploads/\S+")
    assert patches == [6, 5]


def test_chunks_sent_through_nginx_on_new_connections_land_on_both_nodes(cluster):
    creds = cluster.front.alice
    data = os.urandom(3 * MIB + 7)
    started = cluster.front.request("POST", "/v2/alice/cluster/rr/blobs/uploads/", creds=creds)
    location = urlsplit(started.headers["Location"]).path
    for start in range(0, len(data), 512 * 1024):
        location = upload_chunk(
            cluster.front, location, data[start : start + 512 * 1024], start, creds
        )
    digest = "sha256:" + hashlib.sha256(data).hexdigest()

    finished = cluster.front.request("PUT", f"{location}?digest={digest}", creds=creds, body=b"")

    assert finished.status == 201, finished.body
    patches = cluster.requests_per_node("PATCH", r"/v2/alice/cluster/rr/blobs/uploads/\S+")
    assert sum(patches) == 7
    assert min(patches) >= 3


def bearer_token(node: LiveRegistry, creds: Credentials, scope: str) -> str:
    challenge = node.request("GET", "/v2/")
    assert challenge.status == 401
    header = challenge.headers["WWW-Authenticate"]
    realm = re.search(r'realm="([^"]+)"', header).group(1)
    service = re.search(r'service="([^"]+)"', header).group(1)
    path = urlsplit(realm).path
    answer = node.request("GET", f"{path}?service={service}&scope={scope}", creds=creds)
    assert answer.status == 200, answer.body
    return json.loads(answer.body)["token"]


def test_a_bearer_token_from_one_node_is_good_on_the_other(cluster):
    a, b = cluster.nodes
    token = bearer_token(a, cluster.front.alice, "repository:alice/cluster/app:pull")
    bearer = {"Authorization": f"Bearer {token}"}

    on_b = b.request("HEAD", "/v2/alice/cluster/app/manifests/1.0", headers=bearer)
    forged = b.request(
        "HEAD", "/v2/alice/cluster/app/manifests/1.0", headers={"Authorization": f"Bearer {token}x"}
    )

    assert on_b.status == 200
    assert forged.status == 401


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def push_small_image(node: LiveRegistry, repository: str, tag: str, creds, layer: bytes) -> str:
    """A config and one layer pushed whole, then the manifest under `tag`: its digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    described = []
    for blob, media_type in (
        (config, "application/vnd.oci.image.config.v1+json"),
        (layer, "application/vnd.oci.image.layer.v1.tar"),
    ):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        stored = node.request(
            "POST", f"/v2/{repository}/blobs/uploads/?digest={digest}", creds=creds, body=blob
        )
        assert stored.status == 201, stored.body
        described.append({"mediaType": media_type, "digest": digest, "size": len(blob)})
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": described[0],
            "layers": described[1:],
        }
    ).encode()
    put = node.request(
        "PUT",
        f"/v2/{repository}/manifests/{tag}",
        creds=creds,
        headers={"Content-Type": OCI_MANIFEST},
        body=manifest,
    )
    assert put.status == 201, put.body
    return put.headers["Docker-Content-Digest"]


def test_a_tag_moved_or_deleted_on_one_node_is_seen_at_once_on_the_other(cluster):
    # The other node keeps what its pulls found (registry/pull_cache.py), but only while
    # no image changed: the word of a change goes through Redis before the push answers.
    a, b = cluster.nodes
    creds = cluster.front.alice
    path = "/v2/alice/cluster/moving/manifests/latest"
    first = push_small_image(a, "alice/cluster/moving", "latest", creds, b"first layer")
    for _ in range(3):  # every worker of b has likely found it and kept it
        assert b.request("HEAD", path, creds=creds).headers["Docker-Content-Digest"] == first

    second = push_small_image(a, "alice/cluster/moving", "latest", creds, b"second layer")

    for _ in range(3):
        assert b.request("HEAD", path, creds=creds).headers["Docker-Content-Digest"] == second
    assert first != second
    deleted = a.request("DELETE", f"/v2/alice/cluster/moving/manifests/{second}", creds=creds)
    assert deleted.status == 202, deleted.body
    assert b.request("HEAD", path, creds=creds).status == 404


def test_both_realms_name_the_front(cluster):
    challenges = [node.request("GET", "/v2/").headers["WWW-Authenticate"] for node in cluster.nodes]

    assert challenges[0] == challenges[1]
    assert f'realm="{cluster.front.url}/v2/token"' in challenges[0]


def test_failed_sign_ins_on_both_nodes_count_together(cluster):
    # A name of its own: failures are counted per client address and user name.
    name = f"guess-{secrets.token_hex(4)}"
    wrong = Credentials(name, "wrong")
    statuses = [cluster.front.request("GET", "/v2/", creds=wrong).status for _ in range(10)]

    assert statuses == [401] * 10
    hits = cluster.requests_per_node("GET", "/v2/")
    assert min(hits) >= 5  # the ten failures were split between the nodes
    for node in cluster.nodes:
        answer = node.request("GET", "/v2/", creds=wrong)
        assert answer.status == 429, node.url
        assert int(answer.headers["Retry-After"]) >= 1


def scrape(node: LiveRegistry) -> str:
    answer = node.request("GET", "/-/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status == 200, answer.body
    return answer.body.decode()


def counter(text: str, name: str, **labels) -> float | None:
    """The sum of the samples of `name` with exactly these labels; None if there are none."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    found = None
    for line in text.splitlines():
        if line.startswith(name + "{"):
            got = line[len(name) + 1 : line.index("}")]
        elif line.startswith(name + " "):
            got = ""
        else:
            continue
        if ",".join(sorted(filter(None, got.split(",")))) == wanted:
            found = (found or 0.0) + float(line.rsplit(" ", 1)[1])
    return found


def test_each_node_reports_metrics_summed_over_its_workers(cluster):
    # After the alternating push each node answered PATCHes, on either of its workers.
    texts = [scrape(node) for node in cluster.nodes]

    patches = [
        counter(text, "registry_http_requests_total", route="upload", method="PATCH", status="202")
        for text in texts
    ]
    assert all(count > 0 for count in patches)
    assert sum(patches) == sum(cluster.requests_per_node("PATCH", r"/v2/\S+/blobs/uploads/\S+"))
    assert all("registry_http_request_duration_seconds_bucket" in text for text in texts)
    # Every chunk went on from the hash state the other node saved: nothing re-read.
    assert [counter(text, "packages_upload_rehashed_bytes_total") for text in texts] == [0, 0]
    assert all("registry_uploads_in_progress" in text for text in texts)


def test_readiness_on_each_node_checks_postgres_s3_and_redis(cluster):
    for node in cluster.nodes:
        answer = node.request("GET", "/-/readyz")
        assert answer.status == 200, answer.body
        assert set(json.loads(answer.body)["checks"]) == {"database", "storage", "cache"}
