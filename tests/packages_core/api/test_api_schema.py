"""The OpenAPI schema at /api/schema/ and the Swagger UI at /api/docs/ (no CDN)."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.validation import validate_schema

from packages_core.services import tokens

pytestmark = pytest.mark.django_db

API_PATHS = {
    "/api/v1/packages/{owner}": {"get"},
    "/api/v1/packages/{owner}/{type}/{name}/{version}": {"get", "delete"},
    "/api/v1/packages/{owner}/{type}/{name}/{version}/files": {"get"},
    "/api/v1/owners/{owner}/webhooks": {"get", "post"},
    "/api/v1/owners/{owner}/webhooks/{webhook_id}": {"get", "patch", "delete"},
    "/api/v1/owners/{owner}/webhooks/{webhook_id}/deliveries": {"get"},
    "/api/v1/owners/{owner}/webhooks/{webhook_id}/test": {"post"},
    "/api/v1/owners/{owner}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver": {"post"},
    "/api/v1/token/": {"post"},
    "/api/v1/token/refresh/": {"post"},
}


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def test_the_schema_is_valid_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)  # raises jsonschema.ValidationError if not


def test_the_schema_describes_every_endpoint(schema):
    assert {path: set(item) for path, item in schema["paths"].items()} == API_PATHS


def test_the_schema_names_every_way_to_authenticate(schema):
    assert set(schema["components"]["securitySchemes"]) == {
        "accessToken",
        "accessTokenBasic",
        "jwtAuth",
        "cookieAuth",
    }
    reads = schema["paths"]["/api/v1/packages/{owner}"]["get"]["security"]
    deletes = schema["paths"]["/api/v1/packages/{owner}/{type}/{name}/{version}"]["delete"]
    assert {} in reads  # anonymous reads of what anyone may see
    assert {} not in deletes["security"]


def test_the_schema_shows_the_prefix_access_tokens_are_issued_with(client, monkeypatch):
    monkeypatch.setattr(tokens, "TOKEN_PREFIX", "xyz_")

    response = client.get("/api/schema/", {"format": "json"})

    schemes = json.loads(response.content)["components"]["securitySchemes"]
    assert "`token xyz_...`" in schemes["accessToken"]["description"]
    assert "`xyz_...`" in schemes["accessTokenBasic"]["description"]


def test_the_schema_documents_errors_and_parameters(schema):
    version = schema["paths"]["/api/v1/packages/{owner}/{type}/{name}/{version}"]
    assert set(version["delete"]["responses"]) == {"204", "401", "403", "404", "409"}
    assert set(version["get"]["responses"]) == {"200", "401", "404"}
    listing = schema["paths"]["/api/v1/packages/{owner}"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"owner", "page", "q", "type"}
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PaginatedPackageList"
    }


def test_the_schema_is_also_served_as_yaml(client):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    assert yaml.safe_load(response.content)["openapi"].startswith("3.")


def test_the_spectacular_command_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    document = yaml.safe_load(target.read_text())
    validate_schema(document)
    assert set(API_PATHS) <= set(document["paths"])


def test_the_docs_use_the_bundled_swagger_ui(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "/api/schema/" in page
    assert "https://" not in page
    assert "//cdn." not in page
    assert "jsdelivr" not in page
    assert "unpkg" not in page
    assets = re.findall(r"/static/(drf_spectacular_sidecar/[^\"' ]+)", page)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets), assets
    for asset in assets:
        assert finders.find(asset), f"{asset} is not among the bundled static files"


def test_the_schema_shows_the_webhook_secret_as_write_only(schema):
    webhook = schema["components"]["schemas"]["Webhook"]["properties"]
    assert webhook["secret"]["writeOnly"] is True
    assert webhook["has_secret"]["readOnly"] is True
    reads = schema["paths"]["/api/v1/owners/{owner}/webhooks"]["get"]
    assert {} not in reads["security"]  # never anonymous
