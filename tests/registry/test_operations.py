"""Liveness, readiness and Prometheus metrics (/-/healthz, /-/readyz, /-/metrics)."""

from __future__ import annotations

import socket

import pytest
from prometheus_client import REGISTRY
from registry_helpers import ALICE, basic_auth, digest_of, push_image, send, start_upload

pytestmark = pytest.mark.django_db

TOKEN = "scrape-me-" + "x" * 20


@pytest.fixture
def metrics_on(settings):
    settings.REGISTRY = {**getattr(settings, "REGISTRY", {}), "METRICS_TOKEN": TOKEN}


def scrape(client, **headers) -> str:
    response = client.get("/-/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
    assert response.status_code == 200, response.content
    return response.content.decode()


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def unwritable_storage(settings, tmp_path):
    """Blob storage under a path whose parent is a file: nothing can be written there."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings.STORAGES = {
        **settings.STORAGES,
        "packages": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blocker / "packages")},
        },
    }


# Liveness and readiness


def test_liveness_answers_without_touching_anything(client):
    response = client.get("/-/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readiness_is_200_when_database_storage_and_cache_answer(client):
    response = client.get("/-/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "storage", "cache"}
    assert all(check["ok"] for check in body["checks"].values())
    assert all(check["ms"] >= 0 for check in body["checks"].values())


def test_readiness_on_redis_and_s3(client, redis_cache, s3_storage):
    response = client.get("/-/readyz")

    assert response.status_code == 200, response.json()


def test_readiness_is_503_naming_the_cache_when_redis_is_down(client, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }

    response = client.get("/-/readyz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["cache"]["ok"] is False
    assert checks["database"]["ok"] is True
    assert "Connection" not in response.content.decode()  # errors go to the log only


def test_readiness_is_503_when_the_storage_directory_cannot_be_made(client, unwritable_storage):

    response = client.get("/-/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["storage"]["ok"] is False


def test_readiness_is_503_when_the_bucket_is_gone(client, s3_storage):
    s3_storage.client.delete_bucket(Bucket=s3_storage.name)
    try:
        response = client.get("/-/readyz")
    finally:
        s3_storage.client.create_bucket(Bucket=s3_storage.name)

    assert response.status_code == 503
    assert response.json()["checks"]["storage"]["ok"] is False


def test_probes_take_only_get_and_head(client):
    assert client.post("/-/healthz").status_code == 405
    assert client.head("/-/readyz").status_code == 200


# Metrics


def test_metrics_are_off_without_a_token(client):
    assert client.get("/-/metrics").status_code == 404


def test_metrics_need_the_token(client, metrics_on):
    assert client.get("/-/metrics").status_code == 401
    assert client.get("/-/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/-/metrics", **ALICE).status_code == 401


def test_metrics_take_the_token_as_bearer_or_as_basic_password(client, metrics_on):
    assert client.get("/-/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert client.get("/-/metrics", **basic_auth("prometheus", TOKEN)).status_code == 200


def test_requests_are_counted_by_route_method_and_status(client, alice, metrics_on):
    before = sample("registry_http_requests_total", route="manifest", method="GET", status="200")
    missing = sample("registry_http_requests_total", route="manifest", method="GET", status="404")
    push_image(client, "alice/app", "1.0")
    send(client, "GET", "/v2/alice/app/manifests/1.0", auth=ALICE)
    send(client, "GET", "/v2/alice/app/manifests/2.0", auth=ALICE)

    text = scrape(client)

    assert "registry_http_requests_total" in text
    assert "registry_http_request_duration_seconds_bucket" in text
    after = sample("registry_http_requests_total", route="manifest", method="GET", status="200")
    assert after == before + 1
    assert (
        sample("registry_http_requests_total", route="manifest", method="GET", status="404")
        == missing + 1
    )


def test_bytes_received_and_sent_are_counted(client, alice, metrics_on):
    received = sample("registry_http_request_bytes_total", route="upload")
    sent = sample("registry_http_response_bytes_total", route="blob")
    location = start_upload(client, "alice/app")
    data = b"z" * 12345
    send(client, "PATCH", location, data, auth=ALICE)
    digest = digest_of(data)
    assert send(client, "PUT", f"{location}?digest={digest}", b"", auth=ALICE).status_code == 201
    assert send(client, "GET", f"/v2/alice/app/blobs/{digest}", auth=ALICE).status_code == 200

    assert sample("registry_http_request_bytes_total", route="upload") == received + len(data)
    assert sample("registry_http_response_bytes_total", route="blob") == sent + len(data)


def test_uploads_in_progress_are_counted_from_the_database(client, alice, metrics_on):
    start_upload(client, "alice/app")
    start_upload(client, "alice/app")

    assert "registry_uploads_in_progress 2.0" in scrape(client)


def test_storage_failures_are_counted(client, alice, metrics_on, unwritable_storage):
    before = sample("registry_storage_errors_total", route="uploads")
    client.raise_request_exception = False

    response = send(
        client, "POST", "/v2/alice/app/blobs/uploads/?digest=sha256:" + "0" * 64, b"x", auth=ALICE
    )

    assert response.status_code == 500
    assert sample("registry_storage_errors_total", route="uploads") == before + 1
