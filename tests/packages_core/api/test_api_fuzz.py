"""Schemathesis against the REST API's own OpenAPI schema: whatever it sends, in the
schema or not quite, the API answers 2xx or 4xx, never a 5xx.

The requests go through the site's WSGI application in-process (the whole middleware
stack), seeded with an owner, a package and an access token; examples are few and
derandomized so that the suite stays quick and repeatable (API_FUZZ_EXAMPLES=500 for
a deeper search by hand).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from forge.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture
def seeded(alice, package):
    """alice with a package, so that paths naming her reach real rows."""
    # The handler closes old connections around each request; on PostgreSQL that
    # would close the one holding the test's transaction (Django's test client
    # disconnects it the same way).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("API_FUZZ_EXAMPLES", "20")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_never_answers_a_server_error(case, seeded):
    response = case.call()

    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
