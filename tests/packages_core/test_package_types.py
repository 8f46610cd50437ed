"""The package-type registry: a second type (tests/generic_files) on packages_core alone.

It uses owners, quotas, cleanup rules and the REST API, and registers what its versions
mean in its AppConfig.ready(); nothing of `registry` is involved.
"""

from __future__ import annotations

import ast
import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from packages_core import types
from packages_core.models import CleanupRule, PackageVersion
from packages_core.services import cleanup
from packages_core.services.quotas import QuotaExceeded
from tests.api_helpers import client_with, files_url, signed_in, version_url
from tests.generic_files import package_type
from tests.generic_files.services import publish

pytestmark = pytest.mark.django_db

GENERIC_APP = Path(__file__).resolve().parents[1] / "generic_files"


def put(owner, user, package: str, version: str, data: bytes):
    return publish(owner, user, package, version, f"{package}-{version}.txt", io.BytesIO(data))


def test_both_types_are_registered_by_their_apps():
    assert types.names() == ["container", "generic"]
    assert types.get("generic") is package_type.GENERIC
    assert types.choices() == [("container", "Container image"), ("generic", "Generic files")]


def test_an_unregistered_type_reads_with_the_defaults():
    found = types.get("npm")

    assert found.is_tag("1.0.0")
    assert found.is_tag("sha256:abc")
    assert found.cleanup_policy.protected_versions(None) == set()
    assert not types.is_registered("npm")


def test_a_type_is_named_like_a_package_type_and_registered_once():
    with pytest.raises(ImproperlyConfigured, match="lowercase word"):
        types.register(types.PackageType(name="Not A Type", label="x"))
    with pytest.raises(ImproperlyConfigured, match="registered twice"):
        types.register(types.PackageType(name="generic", label="Something else"))
    types.register(package_type.GENERIC)  # the same again is harmless


def test_the_generic_type_imports_nothing_of_the_registry():
    imported = set()
    for module in GENERIC_APP.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
    assert "packages_core" in imported
    assert "registry" not in imported


def test_a_published_file_is_served_by_the_api_with_the_types_own_fields(alice):
    put(alice.package_owner, alice, "notes", "0.1", b"first notes")

    body = client_with().get(version_url("alice", "notes", "0.1", type="generic")).json()
    files = client_with().get(files_url("alice", "notes", "0.1", type="generic")).json()
    listed = client_with().get("/api/v1/packages/alice?type=generic").json()

    assert body["file_names"] == ["notes-0.1.txt"]  # GenericVersionSerializer's field
    assert body["is_tagged"] is True
    assert body["html_url"] is None  # the type has no pages
    assert "manifest_digest" not in body  # a container's field
    assert [f["name"] for f in files["results"]] == ["notes-0.1.txt"]
    assert [(p["name"], p["type"], p["total_size"]) for p in listed["results"]] == [
        ("notes", "generic", len(b"first notes"))
    ]


def test_a_writer_deletes_a_generic_version_through_the_api(alice):
    put(alice.package_owner, alice, "notes", "0.1", b"first notes")

    response = signed_in(alice).delete(version_url("alice", "notes", "0.1", type="generic"))

    assert response.status_code == 204
    assert not PackageVersion.objects.filter(package__type="generic").exists()


def test_the_owners_quota_holds_for_the_generic_type(alice, settings):
    settings.PACKAGES = {**settings.PACKAGES, "QUOTA_OWNER_VERSIONS": 1}
    put(alice.package_owner, alice, "notes", "0.1", b"first notes")

    with pytest.raises(QuotaExceeded):
        put(alice.package_owner, alice, "notes", "0.2", b"second notes")
    settings.PACKAGES = {**settings.PACKAGES, "QUOTA_BLOB_BYTES": 4, "QUOTA_OWNER_VERSIONS": -1}
    with pytest.raises(QuotaExceeded):
        put(alice.package_owner, alice, "other", "1", b"more than four bytes")


def test_cleanup_rules_apply_and_the_types_policy_keeps_the_newest(alice):
    owner = alice.package_owner
    for number in range(1, 4):
        put(owner, alice, "notes", f"0.{number}", f"notes {number}".encode())
    PackageVersion.objects.filter(package__type="generic").update(
        created=timezone.now() - timedelta(days=30)
    )
    # Keep none and remove everything older than a day: only the type's policy saves one.
    CleanupRule.objects.create(owner=owner, type="generic", keep_count=0, remove_days=1)

    report = cleanup.run_cleanup()

    left = PackageVersion.objects.filter(package__type="generic", is_internal=False)
    assert [v.version for v in left] == ["0.3"]
    assert report.versions == 2
