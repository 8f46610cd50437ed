"""Lookups that must stay index lookups however much data there is (PostgreSQL plans).

One image gets thousands of tags and the owner hundreds of images, then EXPLAIN shows
how PostgreSQL runs the lookups of a pull and a push: never a sequential scan over
versions, files or manifests, with planner statistics and without (a fresh database
has none until autovacuum's ANALYZE comes by).
"""

from __future__ import annotations

import io
import json

import pytest
from django.db import connection
from django.utils import timezone

from packages_core.models import Package, PackageBlob, PackageFile, PackageVersion
from packages_core.services import versions
from packages_core.services.blobs import store_blob
from registry import images
from registry.models import Manifest
from tests.conftest import on_postgresql

pytestmark = pytest.mark.django_db

TAGS = 3000
IMAGES = 300
DISCARDED = (
    "Rows Removed by Filter",
    "Rows Removed by Join Filter",
    "Rows Removed by Index Recheck",
)
BIG_TABLES = ("packages_core_packageversion", "packages_core_packagefile", "registry_manifest")


@pytest.fixture
def postgresql():
    if not on_postgresql():
        pytest.skip("query plans are PostgreSQL's; run with DATABASE_URL=postgres://…")


@pytest.fixture
def filled(postgresql, alice, store):
    """alice/big with TAGS tags (a manifest and a shared layer each) and IMAGES small
    images beside it, written in bulk.
    """
    owner = alice.package_owner
    layer = store_blob(io.BytesIO(b"shared layer"), store=store).blob
    now = timezone.now()
    big = versions.get_or_create_package(owner, images.CONTAINER, "big")
    packages = [
        big,
        *Package.objects.bulk_create(
            Package(owner=owner, type=images.CONTAINER, name=f"small-{n}", last_pushed=now)
            for n in range(IMAGES)
        ),
    ]
    tags = [(big, f"v{n}") for n in range(TAGS)] + [(p, "latest") for p in packages[1:]]
    blobs = PackageBlob.objects.bulk_create(
        PackageBlob(size=100, sha256=f"{n:064x}") for n in range(1, len(tags) + 1)
    )
    rows = PackageVersion.objects.bulk_create(
        PackageVersion(package=package, version=tag) for package, tag in tags
    )
    leads = PackageFile.objects.bulk_create(
        PackageFile(version=row, package=row.package, blob=blob, name="manifest.json", is_lead=True)
        for row, blob in zip(rows, blobs, strict=True)
    )
    PackageFile.objects.bulk_create(
        PackageFile(version=row, package=row.package, blob=layer, name=f"sha256:{layer.sha256}")
        for row in rows
    )
    Manifest.objects.bulk_create(
        Manifest(
            file=lead,
            package=row.package,
            digest=f"sha256:{blob.sha256}",
            media_type="application/vnd.oci.image.manifest.v1+json",
        )
        for lead, row, blob in zip(leads, rows, blobs, strict=True)
    )
    return {"owner": owner, "layer": layer, "tag_blob": blobs[TAGS // 2]}


def plan(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def prepared_plan(query, *values) -> str:
    _compiler, sql, slots, _converters = query._compile("default")
    params = [values[slot] if isinstance(slot, int) else slot.value for slot in slots]
    return plan(sql, params)


def assert_no_sequential_scans(text: str) -> None:
    for table in BIG_TABLES:
        assert f"Seq Scan on {table}" not in text, text


def rows_touched(query, *values) -> int:
    """How many rows the plan's nodes produced, all loops counted (EXPLAIN ANALYZE):
    what a lookup costs, which must not grow with the image.
    """
    _compiler, sql, slots, _converters = query._compile("default")
    params = [values[slot] if isinstance(slot, int) else slot.value for slot in slots]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        document = cursor.fetchone()[0]
    if isinstance(document, str):
        document = json.loads(document)

    def walk(node) -> int:
        read = node.get("Actual Rows", 0)
        if node.get("Relation Name") in BIG_TABLES:
            # Rows read and thrown away count too: an index scan that filters every
            # manifest of the image down to one returns one row but reads them all.
            # (Not for the small tables: without statistics PostgreSQL may scan the
            # few hundred packages here, a transient state this does not judge.)
            read += sum(node.get(key, 0) for key in DISCARDED)
        own = read * node.get("Actual Loops", 1)
        return own + sum(walk(child) for child in node.get("Plans", []))

    return walk(document[0]["Plan"])


@pytest.fixture(params=["without statistics", "after ANALYZE"])
def statistics(request, filled):
    if request.param == "after ANALYZE":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return filled


def test_a_manifest_by_tag_is_found_by_index(statistics):
    assert_no_sequential_scans(prepared_plan(images._BY_TAG, "alice", "big", "v1234"))
    # A handful of rows, not the image's thousands of manifests.
    assert rows_touched(images._BY_TAG, "alice", "big", "v1234") < 20


def test_a_manifest_by_digest_is_found_by_index(statistics):
    digest = f"sha256:{statistics['tag_blob'].sha256}"

    assert_no_sequential_scans(prepared_plan(images._BY_DIGEST, "alice", "big", digest))
    assert rows_touched(images._BY_DIGEST, "alice", "big", digest) < 20


def test_a_blob_in_an_image_is_found_by_index(statistics):
    layer = statistics["layer"]

    query = images._BLOB_BY_ALGORITHM["sha256"]

    assert_no_sequential_scans(prepared_plan(query, statistics["owner"].pk, "big", layer.sha256))
    assert rows_touched(query, statistics["owner"].pk, "big", layer.sha256) < 20


def test_the_lookups_answer_right_at_this_size(filled):
    owner, found = images.resolve_manifest("alice", "big", "v2999")

    assert owner.name == "alice"
    assert found is not None
    assert images.find_blob(owner, "big", images.Digest("sha256", filled["layer"].sha256))
