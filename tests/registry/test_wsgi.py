"""The forge site's WSGI entry: /v2 and the probes through the protocol's short middleware
stack, the pages (those under /-/ too) through the whole one.
"""

from __future__ import annotations

import importlib.util
import io
import json

import pytest
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from forge import wsgi
from registry.views import listings
from registry.wsgi import PROTOCOL_MIDDLEWARE, ProtocolHandler

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


def call(
    path: str, host: str = "127.0.0.1", method: str = "GET", app=None, query: str = ""
) -> tuple[str, dict]:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
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

    result = (app or wsgi.application)(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
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


@pytest.mark.parametrize("path", ["/-/settings/tokens", "/-/orgs/new"])
def test_pages_under_the_probes_prefix_keep_the_whole_stack(alice, path):
    """They need the session: through the short stack they had no user (a 500)."""
    status, headers = call(path)

    assert status.startswith("302")
    assert headers["Location"].startswith("/login/")
    assert headers["X-Frame-Options"] == "DENY"


def test_pages_keep_the_whole_stack(alice):
    status, headers = call("/alice/-/packages")

    assert status.startswith("200")
    assert headers["X-Frame-Options"] == "DENY"


def test_a_host_not_allowed_is_refused_on_the_protocol_as_on_the_pages():
    status, headers = call("/v2/", host="evil.example")

    assert status.startswith("400")
    assert json.loads(headers["body"])["errors"][0]["code"] == "UNKNOWN"
    assert headers["Docker-Distribution-Api-Version"] == "registry/2.0"


def test_a_host_not_allowed_is_400_in_the_spec_format_even_when_a_view_finds_it():
    """Without CommonMiddleware nothing checks the host before the view asks for it."""
    status, headers = call("/v2/", host="evil.example", app=ProtocolHandler(middleware=()))

    assert status.startswith("400")
    assert json.loads(headers["body"])["errors"][0]["code"] == "UNKNOWN"
    assert headers["Docker-Distribution-Api-Version"] == "registry/2.0"


# HEAD: headers only, whatever the route gives


@pytest.mark.parametrize(
    "path", ["/v2/", "/v2/_catalog", "/v2/token", "/v2/alice/x/tags/list", "/alice/-/packages"]
)
def test_a_head_answer_has_no_body_on_any_route(alice, path):
    """WSGI servers send what the application returns; a body after a HEAD's headers
    would be read as the next response on a kept-alive connection.
    """
    status, headers = call(path, method="HEAD")

    assert headers["body"] == b""
    assert not status.startswith("5")


def test_a_protocol_head_has_no_body_even_without_the_wsgi_front(alice):
    """A host site may serve /v2 with Django's own handler: the views drop the body."""
    handler = ProtocolHandler()

    _, got = call("/v2/_catalog", app=handler)
    _, headed = call("/v2/_catalog", method="HEAD", app=handler)

    assert got["body"]
    assert headed["body"] == b""
    assert headed["Content-Length"] == str(len(got["body"]))


# Failures: the spec's JSON, never the site's HTML error page


class FailingMiddleware:
    """Raises on every request: a failure around the views rather than in one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raise RuntimeError("the middleware broke")


def test_a_failure_outside_the_views_is_a_500_in_the_spec_format(settings):
    settings.DEBUG = False
    handler = ProtocolHandler([*PROTOCOL_MIDDLEWARE, f"{__name__}.FailingMiddleware"])

    status, headers = call("/v2/", app=handler)

    assert status.startswith("500")
    assert headers["Content-Type"] == "application/json"
    assert json.loads(headers["body"])["errors"][0]["code"] == "UNKNOWN"
    assert headers["Docker-Distribution-Api-Version"] == "registry/2.0"


def test_a_failing_view_behind_the_short_stack_is_a_500_in_the_spec_format(
    settings, monkeypatch, alice
):
    settings.DEBUG = False

    def fail(*args, **kwargs):
        raise RuntimeError("the catalog broke")

    monkeypatch.setattr(listings.images, "catalog", fail)

    status, headers = call("/v2/_catalog")

    assert status.startswith("500")
    assert json.loads(headers["body"]) == {
        "errors": [
            {"code": "UNKNOWN", "message": "the registry could not answer; its log says why"}
        ]
    }
    assert headers["Docker-Distribution-Api-Version"] == "registry/2.0"


# NUL characters in a page's address


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/admin/packages_core/owner/", "visibility=%00"),
        ("/alice/-/packages", "q=a%00"),
        ("/\x00/-/packages", ""),
    ],
    ids=["admin-filter", "search", "path"],
)
def test_a_nul_in_a_page_address_is_400_before_django(alice, path, query):
    """No text column holds a NUL; on PostgreSQL a query for one is an error, and the
    admin's list filters take any value.
    """
    status, headers = call(path, query=query)

    assert status.startswith("400")
    assert b"NUL" in headers["body"]


def test_the_forge_site_is_served_through_wsgi_only():
    """Blob uploads stream from wsgi.input (registry/request_body.py): an ASGI entry
    point would serve pages and fail every push.
    """
    assert settings.WSGI_APPLICATION == "forge.wsgi.application"
    assert getattr(settings, "ASGI_APPLICATION", None) is None
    assert importlib.util.find_spec("forge.asgi") is None
