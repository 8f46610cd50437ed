"""Helpers for the REST API tests: URLs, credentials and a client per caller."""

from __future__ import annotations

from rest_framework.test import APIClient

from packages_core.models.owners import Visibility
from packages_core.services.tokens import create_access_token
from tests.registry_helpers import basic_auth

READ = "read:package"
WRITE = "write:package"


def packages_url(owner: str) -> str:
    return f"/api/v1/packages/{owner}"


def version_url(owner: str, name: str, version: str, type: str = "container") -> str:
    return f"/api/v1/packages/{owner}/{type}/{name}/{version}"


def files_url(owner: str, name: str, version: str, type: str = "container") -> str:
    return version_url(owner, name, version, type) + "/files"


def token_secret(user, scopes=(READ, WRITE), name: str = "api", **kwargs) -> str:
    """A new access token's secret for `user`."""
    return create_access_token(user, name, list(scopes), **kwargs)[1]


def token_header(secret: str) -> dict[str, str]:
    """`Authorization: token <secret>`, as WSGI environ."""
    return {"HTTP_AUTHORIZATION": f"token {secret}"}


def client_with(headers: dict[str, str] | None = None) -> APIClient:
    """An API client sending these WSGI headers with every request."""
    client = APIClient()
    if headers:
        client.credentials(**headers)
    return client


def signed_in(user) -> APIClient:
    """An API client with a session of `user` (CSRF not enforced: see the CSRF test)."""
    client = APIClient()
    client.force_login(user)
    return client


def with_token(user, scopes=(READ, WRITE)) -> APIClient:
    return client_with(token_header(token_secret(user, scopes)))


def with_basic_token(user, scopes=(READ, WRITE)) -> APIClient:
    return client_with(basic_auth("anything", token_secret(user, scopes)))


def set_visibility(user_or_owner, visibility: str) -> None:
    owner = getattr(user_or_owner, "package_owner", user_or_owner)
    assert visibility in Visibility.values
    owner.visibility = visibility
    owner.save(update_fields=["visibility"])
