"""The forge site's WSGI entry: /v2 and /-/ through the protocol's short middleware stack."""

from __future__ import annotations

import io

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from forge import wsgi

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Keep the test's connection open across the calls, as Django's test client does.

    The real handler closes old connections when a request starts and ends; on
    PostgreSQL that closes the connection holding the test's transaction.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def call(path: str, host: str = "127.0.0.1") -> tuple[str, dict]:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": host,
        "SERVER_PORT": "80",
        "HTTP_HOST": host,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
    }
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = status, dict(headers)

    body = b"".join(wsgi.application(environ, start_response))
    return answer["status"], {**answer["headers"], "body": body}


def test_protocol_requests_skip_the_pages_middleware(alice):
    status, headers = call("/v2/")

    assert status.startswith("401")
    assert "X-Frame-Options" not in headers  # the pages' clickjacking middleware
    assert headers["X-Content-Type-Options"] == "nosniff"  # security headers apply
    assert headers["Docker-Distribution-Api-Version"] == "registry/2.0"


def test_probes_go_the_short_way_too():
    status, headers = call("/-/healthz")

    assert status.startswith("200")
    assert "X-Frame-Options" not in headers


def test_pages_keep_the_whole_stack(alice):
    status, headers = call("/alice/-/packages")

    assert status.startswith("200")
    assert headers["X-Frame-Options"] == "DENY"


def test_a_host_not_allowed_is_refused_on_the_protocol_as_on_the_pages():
    status, _ = call("/v2/", host="evil.example")

    assert status.startswith("400")
