"""Cleanup and garbage collection: owners' rules with Gitea's semantics, then each GC step.

Storage objects go only after the transaction that forgot them commits; pytest-django
wraps each test in a transaction, so tests that look at storage run the cleanup under
`django_capture_on_commit_callbacks(execute=True)`.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from packages_core.exceptions import InvalidInput
from packages_core.models import (
    BlobDeletion,
    BlobUpload,
    CleanupRule,
    Package,
    PackageBlob,
    PackageFile,
    PackageProperty,
    PackageVersion,
)
from packages_core.models.blobs import blob_key
from packages_core.services import blobs, properties, uploads, versions
from packages_core.services.cleanup import (
    CleanupReport,
    parse_duration,
    preview_rule,
    purge_objects,
    run_cleanup,
)
from packages_core.services.properties import RefType
from registry.images import STAGING_VERSION
from tests.registry_helpers import (
    ALICE,
    OCI_MANIFEST,
    artifact_manifest,
    assert_error,
    canonical,
    digest_of,
    image_config,
    image_manifest,
    index_manifest,
    push_blob,
    push_image,
    put_manifest,
    send,
    start_upload,
)

pytestmark = pytest.mark.django_db

REPO = "alice/app"
HOUR = timedelta(hours=1)
# A rule that removes untagged manifests only, whatever their age.
UNTAGGED = r"sha256:.*"
AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64"}


def ago(**delta):
    return timezone.now() - timedelta(**delta)


def make_rule(owner, type="container", **fields) -> CleanupRule:
    return CleanupRule.objects.create(owner=owner, type=type, **fields)


def dated_versions(package: Package, ages: dict[str, float]) -> None:
    """Versions of `package` created `ages[name]` days ago."""
    now = timezone.now()
    for name, days in ages.items():
        version = versions.create_version(package, name)
        PackageVersion.objects.filter(pk=version.pk).update(created=now - timedelta(days=days))


def names(package: Package) -> set[str]:
    """The published versions `package` has left (none once it is dropped)."""
    rows = PackageVersion.objects.filter(package_id=package.pk, is_internal=False)
    return set(rows.values_list("version", flat=True))


def image_versions(repo: str = REPO) -> set[str]:
    owner, _, image = repo.partition("/")
    rows = PackageVersion.objects.filter(
        package__owner__name=owner, package__name=image, is_internal=False
    )
    return set(rows.values_list("version", flat=True))


def push_untagged(client, repo: str = REPO, *, layer: bytes, architecture="amd64", **fields):
    """Push an image by digest only: a version named by its digest; returns (digest, body)."""
    config = image_config(architecture=architecture)
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    body = image_manifest(config, [layer], **fields)
    response = put_manifest(client, repo, digest_of(body), body)
    assert response.status_code == 201, (response.status_code, response.content)
    return digest_of(body), body


def subject_of(digest: str, body: bytes) -> dict:
    return {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body)}


def push_referrer(client, subject: dict, *, repo: str = REPO, reference: str | None = None):
    """An SBOM artifact whose subject is `subject`, by digest unless a tag is given."""
    push_blob(client, repo, b"sbom of " + subject["digest"].encode())
    body = artifact_manifest([b"sbom of " + subject["digest"].encode()], subject=subject)
    response = put_manifest(client, repo, reference or digest_of(body), body)
    assert response.status_code == 201, (response.status_code, response.content)
    return digest_of(body)


def stored_files(root: Path) -> dict[str, int]:
    """Every file under the storage directory, by relative path, with its size."""
    if not root.exists():
        return {}
    return {
        str(path.relative_to(root)): path.stat().st_size
        for path in root.rglob("*")
        if path.is_file()
    }


def age_everything(**delta) -> None:
    """Make every blob, file and version look created that long ago."""
    when = ago(**delta)
    PackageBlob.objects.update(created=when)
    PackageFile.objects.update(created=when)
    PackageVersion.objects.update(created=when)


# Durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0s", timedelta(0)),
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("90d", timedelta(days=90)),
    ],
)
def test_parse_duration_reads_a_number_and_a_unit(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "24", "h", "1.5h", "-1h", "1w", "1 h", "1h30m", "24hours", "s0", "abc"]
)
def test_parse_duration_refuses_anything_else(text):
    with pytest.raises(InvalidInput, match="is not a duration like 30s, 15m, 24h or 7d"):
        parse_duration(text)


# The report


def test_summary_counts_with_singulars_plurals_and_a_human_size():
    report = CleanupReport(
        versions=1,
        uploads=2,
        staged_files=1,
        packages=0,
        blobs=3,
        bytes_freed=1536,
        orphan_blobs=1,
        orphan_uploads=2,
        orphan_locks=0,
        orphan_multipart=1,
    )
    assert report.summary() == (
        "1 version removed, 3 blobs removed, 1.5 KB freed "
        "(2 idle uploads, 1 staged file, 0 empty packages; orphaned in storage: "
        "1 blob object, 2 upload files, 0 lock files, 1 multipart upload)."
    )


def test_summary_of_a_dry_run_says_would():
    assert CleanupReport(blobs=1, bytes_freed=11).summary(dry_run=True) == (
        "0 versions would be removed, 1 blob would be removed, 11 bytes would be freed "
        "(0 idle uploads, 0 staged files, 0 empty packages; orphaned in storage: "
        "0 blob objects, 0 upload files, 0 lock files, 0 multipart uploads)."
    )


def test_nothing_to_do_reports_zeros(db):
    assert run_cleanup() == CleanupReport()


# Rules, field by field (versions without files, so only the rule decides)


@pytest.fixture
def web(alice):
    return versions.get_or_create_package(alice.package_owner, "container", "web")


def test_keep_count_keeps_the_newest_versions_by_creation_time(alice, web):
    dated_versions(web, {"1.0": 5, "3.0": 4, "2.0": 1, "0.9": 2})
    make_rule(alice.package_owner, keep_count=2)

    report = run_cleanup()

    assert names(web) == {"2.0", "0.9"}
    assert report.versions == 2


def test_keep_count_zero_keeps_none_by_count_and_the_empty_package_goes(alice, web):
    dated_versions(web, {"1.0": 3, "2.0": 2})
    make_rule(alice.package_owner, keep_count=0)

    report = run_cleanup()

    assert names(web) == set()
    assert not Package.objects.filter(pk=web.pk).exists()
    assert (report.versions, report.packages) == (2, 1)


def test_keep_count_counts_versions_kept_for_other_reasons_too(alice, web):
    dated_versions(web, {"keep-1": 1, "2.0": 2, "1.0": 3})
    make_rule(alice.package_owner, keep_count=2, keep_pattern=r"keep-\d+")

    run_cleanup()

    assert names(web) == {"keep-1", "2.0"}


def test_keep_pattern_keeps_whole_matches_ignoring_case(alice, web):
    dated_versions(web, {"V1.0": 4, "v1.0-rc1": 3, "2.0": 2, "xv1.0": 1})
    make_rule(alice.package_owner, keep_pattern=r"v1\.\d+")

    run_cleanup()

    assert names(web) == {"V1.0"}


def test_remove_pattern_removes_only_whole_matches_ignoring_case(alice, web):
    dated_versions(web, {"dev-1": 4, "DEV-2": 3, "my-dev-3": 2, "1.0": 1})
    make_rule(alice.package_owner, remove_pattern=r"dev-\d+")

    report = run_cleanup()

    assert names(web) == {"my-dev-3", "1.0"}
    assert report.versions == 2


def test_remove_days_removes_only_versions_older_than_that(alice, web):
    dated_versions(web, {"old": 10, "week-ish": 7.1, "nearly": 6.9, "young": 1})
    make_rule(alice.package_owner, remove_days=7)

    run_cleanup()

    assert names(web) == {"nearly", "young"}


def test_remove_days_zero_ignores_age(alice, web):
    versions.create_version(web, "brand-new")
    make_rule(alice.package_owner, remove_days=0)

    run_cleanup()

    assert names(web) == set()


def test_match_full_name_matches_package_slash_version(alice, web):
    api = versions.get_or_create_package(alice.package_owner, "container", "API")
    dated_versions(web, {"1.0": 2})
    dated_versions(api, {"1.0": 2})
    make_rule(alice.package_owner, remove_pattern=r"web/1\.0", match_full_name=True)

    run_cleanup()

    assert names(web) == set()
    assert names(api) == {"1.0"}


def test_without_match_full_name_patterns_see_only_the_version(alice, web):
    dated_versions(web, {"1.0": 2})
    rule = make_rule(alice.package_owner, remove_pattern=r"web/1\.0")

    assert preview_rule(rule) == []
    run_cleanup()
    assert names(web) == {"1.0"}


def test_keep_pattern_with_match_full_name_matches_the_package_name_ignoring_case(alice, web):
    api = versions.get_or_create_package(alice.package_owner, "container", "API")
    dated_versions(web, {"1.0": 2})
    dated_versions(api, {"1.0": 2})
    make_rule(alice.package_owner, keep_pattern=r"api/.*", match_full_name=True)

    run_cleanup()

    assert names(api) == {"1.0"}
    assert names(web) == set()


def test_keep_count_keep_and_remove_patterns_combine(alice, web):
    # Newest first: old-3 is kept by count although it matches the remove pattern;
    # keep-1 matches both patterns and the keep pattern wins.
    dated_versions(web, {"old-3": 1, "keep-1": 2, "other-1": 3, "old-2": 4, "old-1": 5})
    make_rule(
        alice.package_owner,
        keep_count=1,
        keep_pattern=r"keep-\d+",
        remove_pattern=r"(old|keep)-\d+",
    )

    report = run_cleanup()

    assert names(web) == {"old-3", "keep-1", "other-1"}
    assert report.versions == 2


def test_remove_days_and_remove_pattern_must_both_agree(alice, web):
    dated_versions(web, {"young-1": 3, "other": 10, "old-1": 10})
    make_rule(alice.package_owner, remove_days=7, remove_pattern=r"(old|young)-\d+")

    run_cleanup()

    assert names(web) == {"young-1", "other"}


def pulled(package: Package, ages: dict[str, float]) -> None:
    """Mark versions of `package` as last pulled `ages[name]` days ago."""
    now = timezone.now()
    for name, days in ages.items():
        package.versions.filter(version=name).update(last_pulled=now - timedelta(days=days))


def test_remove_unpulled_days_removes_versions_not_pulled_for_that_long(alice, web):
    dated_versions(web, {"stale": 90, "recent": 90, "never-old": 40, "never-new": 10})
    pulled(web, {"stale": 31, "recent": 29})
    make_rule(alice.package_owner, remove_unpulled_days=30)

    report = run_cleanup()

    # A version never pulled counts from its creation.
    assert names(web) == {"recent", "never-new"}
    assert report.versions == 2


def test_remove_unpulled_days_empty_ignores_pulls(alice, web):
    dated_versions(web, {"pulled-today": 90})
    pulled(web, {"pulled-today": 0})
    make_rule(alice.package_owner, remove_unpulled_days=None)

    run_cleanup()

    assert names(web) == set()


def test_keep_count_and_keep_pattern_protect_versions_nobody_pulls(alice, web):
    dated_versions(web, {"3.0": 50, "2.0": 60, "v-keep": 70, "1.0": 80})
    make_rule(alice.package_owner, keep_count=1, keep_pattern="v-keep", remove_unpulled_days=30)

    run_cleanup()

    assert names(web) == {"3.0", "v-keep"}


def test_latest_stays_however_long_nobody_pulled_it(alice, web):
    dated_versions(web, {"latest": 400, "1.0": 400})
    make_rule(alice.package_owner, remove_unpulled_days=1)

    run_cleanup()

    assert names(web) == {"latest"}


def test_remove_unpulled_days_must_agree_with_the_age_and_the_pattern(alice, web):
    dated_versions(web, {"dev-young": 5, "dev-old": 60, "dev-pulled": 60, "rel-old": 60})
    pulled(web, {"dev-pulled": 2})
    make_rule(alice.package_owner, remove_days=30, remove_pattern=r"dev-.*", remove_unpulled_days=7)

    run_cleanup()

    # dev-young was never pulled for 5 days only, and is younger than 30 days anyway.
    assert names(web) == {"dev-young", "dev-pulled", "rel-old"}


def test_preview_of_a_rule_on_pulls_is_what_a_run_then_removes(alice, web):
    dated_versions(web, {"a": 100, "b": 100, "c": 100, "d": 3, "e": 100})
    pulled(web, {"a": 45, "b": 5, "d": 1})
    rule = make_rule(alice.package_owner, keep_count=1, remove_unpulled_days=30)

    previewed = {version.version for version in preview_rule(rule)}
    report = run_cleanup()

    # d is kept by count; b was pulled within 30 days; a, c and e go.
    assert previewed == {"a", "c", "e"}
    assert names(web) == {"b", "d"}
    assert report.versions == len(previewed)


def test_disabled_rule_removes_nothing_but_previews_what_it_would(alice, web):
    dated_versions(web, {"1.0": 3, "2.0": 2, "3.0": 1})
    rule = make_rule(alice.package_owner, enabled=False, keep_count=1)

    assert run_cleanup().versions == 0
    assert names(web) == {"1.0", "2.0", "3.0"}
    assert sorted(version.version for version in preview_rule(rule)) == ["1.0", "2.0"]


def test_preview_rule_changes_nothing(alice, web):
    dated_versions(web, {"1.0": 3, "2.0": 2})
    rule = make_rule(alice.package_owner, keep_count=1)

    assert [version.version for version in preview_rule(rule)] == ["1.0"]
    assert names(web) == {"1.0", "2.0"}


def test_rules_touch_only_their_owners_packages_of_their_type(alice, bob, web):
    bobs = versions.get_or_create_package(bob.package_owner, "container", "web")
    npm = versions.get_or_create_package(alice.package_owner, "npm", "web")
    for package in (web, bobs, npm):
        dated_versions(package, {"1.0": 2})
    make_rule(alice.package_owner, keep_count=0)

    run_cleanup()

    assert names(web) == set()
    assert names(bobs) == {"1.0"}
    assert names(npm) == {"1.0"}


def test_internal_versions_are_never_removed_nor_counted_by_rules(alice, web, blob):
    dated_versions(web, {"1.0": 3, "2.0": 2})
    staging = versions.create_version(web, STAGING_VERSION, is_internal=True)
    versions.add_file(staging, blob, f"sha256:{blob.sha256}")
    rule = make_rule(alice.package_owner, keep_count=1, remove_pattern=".*")

    assert [version.version for version in preview_rule(rule)] == ["1.0"]
    report = run_cleanup()

    assert report.versions == 1
    assert names(web) == {"2.0"}
    assert PackageVersion.objects.filter(pk=staging.pk, is_internal=True).exists()
    assert staging.files.count() == 1


def test_latest_is_never_removed_from_a_container_image(alice, web):
    dated_versions(web, {"latest": 10, "1.0": 9})
    make_rule(alice.package_owner, keep_count=0, remove_pattern=r"latest|1\.0")

    run_cleanup()

    assert names(web) == {"latest"}


def test_latest_has_no_protection_in_other_package_types(alice):
    # A type nobody registers protects nothing (tests/generic_files keeps its newest).
    other = versions.get_or_create_package(alice.package_owner, "npm", "tool")
    dated_versions(other, {"latest": 10})
    make_rule(alice.package_owner, type="npm", keep_count=0)

    run_cleanup()

    assert names(other) == set()


# Rules on container images: what the image still needs stays


@pytest.fixture
def untagged_rule(alice):
    """Removes every untagged manifest the image does not need, at any age."""
    return make_rule(alice.package_owner, remove_pattern=UNTAGGED)


def test_untagged_manifest_nothing_references_is_removed(client, untagged_rule):
    # Gitea #21673: a tag that moved leaves its old manifest as an untagged version.
    old = push_image(client, REPO, "1.0", layers=(b"first build",))
    push_image(client, REPO, "1.0", layers=(b"second build",))
    assert image_versions() == {"1.0", old.digest}

    report = run_cleanup()

    assert report.versions == 1
    assert image_versions() == {"1.0"}
    response = send(client, "GET", f"/v2/{REPO}/manifests/{old.digest}", auth=ALICE)
    assert_error(response, 404, "MANIFEST_UNKNOWN")


def test_index_children_stay_while_the_index_exists_and_go_after_it(client, untagged_rule):
    amd, amd_body = push_untagged(client, layer=b"amd layer", architecture="amd64")
    arm, arm_body = push_untagged(client, layer=b"arm layer", architecture="arm64")
    stray, _ = push_untagged(client, layer=b"stray layer", architecture="s390x")
    index = index_manifest([(amd_body, AMD64), (arm_body, ARM64)])
    assert put_manifest(client, REPO, "multi", index).status_code == 201

    assert run_cleanup().versions == 1
    assert image_versions() == {"multi", amd, arm}
    assert stray not in image_versions()

    # Deleting the index takes its untagged platforms along (issue 16).
    response = send(client, "DELETE", f"/v2/{REPO}/manifests/multi", auth=ALICE)
    assert response.status_code == 202
    assert image_versions() == set()


def test_platforms_of_a_pulled_index_stay_though_nobody_pulled_them_by_digest(client, alice):
    amd, amd_body = push_untagged(client, layer=b"amd layer", architecture="amd64")
    arm, arm_body = push_untagged(client, layer=b"arm layer", architecture="arm64")
    stray, _ = push_untagged(client, layer=b"stray layer", architecture="s390x")
    index = index_manifest([(amd_body, AMD64), (arm_body, ARM64)])
    assert put_manifest(client, REPO, "multi", index).status_code == 201
    age_everything(days=100)
    PackageVersion.objects.filter(version="multi").update(last_pulled=ago(days=1))
    rule = make_rule(alice.package_owner, remove_unpulled_days=30)

    assert [version.version for version in preview_rule(rule)] == [stray]
    assert run_cleanup().versions == 1
    assert image_versions() == {"multi", amd, arm}


def test_children_of_an_untagged_index_go_with_it(client, untagged_rule):
    _, amd_body = push_untagged(client, layer=b"amd layer", architecture="amd64")
    index = index_manifest([(amd_body, AMD64)])
    assert put_manifest(client, REPO, digest_of(index), index).status_code == 201

    assert run_cleanup().versions == 2
    assert image_versions() == set()


def test_untagged_subject_of_a_tagged_artifact_is_kept(client, untagged_rule):
    subject, body = push_untagged(client, layer=b"signed layer")
    push_referrer(client, subject_of(subject, body), reference="sbom")

    for _ in range(2):
        assert run_cleanup().versions == 0
    assert image_versions() == {subject, "sbom"}


def test_untagged_referrer_of_a_tagged_image_is_kept(client, untagged_rule):
    image = push_image(client, REPO, "1.0")
    referrer = push_referrer(client, subject_of(image.digest, image.manifest))

    for _ in range(2):
        assert run_cleanup().versions == 0
    assert image_versions() == {"1.0", referrer}


def test_referrer_of_an_untagged_subject_goes_then_the_subject(client, untagged_rule):
    subject, body = push_untagged(client, layer=b"orphan layer")
    referrer = push_referrer(client, subject_of(subject, body))

    assert run_cleanup().versions == 1
    assert image_versions() == {subject}, "the subject outlives its referrer by a run"
    assert referrer not in image_versions()
    assert run_cleanup().versions == 1
    assert image_versions() == set()


def test_child_an_index_lists_by_sha512_is_kept(client, untagged_rule):
    child, child_body = push_untagged(client, layer=b"amd layer")
    document = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest_of(child_body, "sha512"),
                "size": len(child_body),
                "platform": AMD64,
            }
        ],
    }
    assert put_manifest(client, REPO, "multi", canonical(document)).status_code == 201

    run_cleanup()

    assert image_versions() == {"multi", child}


def test_subject_named_by_sha512_is_kept(client, untagged_rule):
    subject, body = push_untagged(client, layer=b"signed layer")
    descriptor = {**subject_of(subject, body), "digest": digest_of(body, "sha512")}
    push_referrer(client, descriptor, reference="sbom")

    run_cleanup()

    assert image_versions() == {subject, "sbom"}


# Idle upload sessions


def upload_with_bytes(client, data: bytes) -> tuple[str, BlobUpload]:
    location = start_upload(client, REPO)
    response = send(client, "PATCH", location, data, auth=ALICE)
    assert response.status_code == 202, response.content
    return location, BlobUpload.objects.get()


def test_idle_upload_goes_with_its_staged_bytes(
    client, alice, store, package_storage, django_capture_on_commit_callbacks
):
    _, upload = upload_with_bytes(client, b"0123456789")
    assert store.exists(upload.storage_key)
    BlobUpload.objects.update(updated=ago(hours=2))

    with django_capture_on_commit_callbacks(execute=True):
        report = run_cleanup(grace=HOUR)

    assert report == CleanupReport(uploads=1, bytes_freed=10)
    assert not BlobUpload.objects.exists()
    assert not store.exists(upload.storage_key)
    assert stored_files(package_storage / "uploads") == {}, "its lock file went too"


def test_staged_bytes_of_a_dropped_upload_stay_until_the_commit(client, alice, store):
    _, upload = upload_with_bytes(client, b"0123456789")
    BlobUpload.objects.update(updated=ago(hours=2))

    run_cleanup(grace=HOUR)

    assert not BlobUpload.objects.exists()
    assert store.exists(upload.storage_key)


def test_busy_upload_is_kept_even_if_it_started_long_ago(
    client, alice, store, django_capture_on_commit_callbacks
):
    location, upload = upload_with_bytes(client, b"0123456789")
    BlobUpload.objects.update(created=ago(days=3))

    with django_capture_on_commit_callbacks(execute=True):
        report = run_cleanup(grace=HOUR)

    assert report.uploads == 0
    assert store.exists(upload.storage_key)
    response = send(client, "PUT", f"{location}?digest={digest_of(b'0123456789')}", auth=ALICE)
    assert response.status_code == 201


@pytest.mark.parametrize("method", ["PATCH", "PUT", "GET"])
def test_a_dropped_upload_is_404_blob_upload_unknown(
    client, alice, method, django_capture_on_commit_callbacks
):
    location, upload = upload_with_bytes(client, b"0123456789")
    BlobUpload.objects.update(updated=ago(hours=2))
    with django_capture_on_commit_callbacks(execute=True):
        run_cleanup(grace=HOUR)

    query = f"?digest={digest_of(b'0123456789more')}" if method == "PUT" else ""
    body = b"" if method == "GET" else b"more"
    response = send(client, method, f"{location}{query}", body, auth=ALICE)

    error = assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")
    assert error["detail"] == {"uuid": str(upload.pk)}


def drop_under_its_feet(upload: BlobUpload, django_capture_on_commit_callbacks) -> None:
    """Cleanup drops the session while a request still holds its row."""
    BlobUpload.objects.filter(pk=upload.pk).update(updated=ago(hours=2))
    with django_capture_on_commit_callbacks(execute=True):
        assert uploads.discard_idle_upload(upload.pk, idle_since=ago(hours=1)) == 10


def test_appending_to_an_upload_dropped_under_its_feet_is_upload_gone(
    client, alice, store, package_storage, django_capture_on_commit_callbacks
):
    _, upload = upload_with_bytes(client, b"0123456789")
    drop_under_its_feet(upload, django_capture_on_commit_callbacks)

    with pytest.raises(uploads.UploadGone):
        uploads.append_to_upload(upload, io.BytesIO(b"more"), store=store)


def test_finishing_an_upload_dropped_under_its_feet_is_upload_gone(
    client, alice, store, django_capture_on_commit_callbacks
):
    _, upload = upload_with_bytes(client, b"0123456789")
    drop_under_its_feet(upload, django_capture_on_commit_callbacks)

    with pytest.raises(uploads.UploadGone):
        uploads.complete_upload(upload, store=store)
    assert not PackageBlob.objects.exists()


def test_a_request_racing_the_drop_of_its_upload_leaves_no_file_behind(
    client, alice, store, package_storage, django_capture_on_commit_callbacks
):
    _, upload = upload_with_bytes(client, b"0123456789")
    drop_under_its_feet(upload, django_capture_on_commit_callbacks)

    with pytest.raises(uploads.UploadGone):
        uploads.append_to_upload(upload, io.BytesIO(b"more"), store=store)
    with pytest.raises(uploads.UploadGone):
        uploads.complete_upload(upload, store=store)

    assert stored_files(package_storage / "uploads") == {}


# Staged blobs no manifest took up


def staged(repo: str = REPO) -> set[str]:
    owner, _, image = repo.partition("/")
    rows = PackageFile.objects.filter(
        version__package__owner__name=owner,
        version__package__name=image,
        version__version=STAGING_VERSION,
    )
    return set(rows.values_list("name", flat=True))


def test_staged_blobs_past_the_grace_period_are_dropped_recent_ones_kept(client, alice):
    old = push_blob(client, REPO, b"pushed yesterday")
    new = push_blob(client, REPO, b"pushed just now")
    PackageFile.objects.filter(name=old).update(created=ago(days=1))

    report = run_cleanup(grace=HOUR)

    assert report == CleanupReport(staged_files=1)
    assert staged() == {new}
    assert PackageBlob.objects.count() == 2, "the blob's own grace keeps it a while"
    response = send(client, "HEAD", f"/v2/{REPO}/blobs/{old}", auth=ALICE)
    assert response.status_code == 404
    response = send(client, "HEAD", f"/v2/{REPO}/blobs/{new}", auth=ALICE)
    assert response.status_code == 200


def test_last_stale_staged_file_takes_its_staging_version_package_and_blob(
    client, alice, store, django_capture_on_commit_callbacks
):
    data = b"pushed yesterday"
    digest = push_blob(client, REPO, data)
    age_everything(days=1)

    with django_capture_on_commit_callbacks(execute=True):
        report = run_cleanup(grace=HOUR)

    assert report == CleanupReport(staged_files=1, packages=1, blobs=1, bytes_freed=len(data))
    assert not PackageVersion.objects.exists()
    assert not Package.objects.exists()
    assert not store.exists(blob_key(digest.partition(":")[2]))


def test_manifest_put_after_its_blobs_staging_was_dropped_is_404_blob_unknown(client, alice):
    config, layer = image_config(), b"layer pushed yesterday"
    pushed = {push_blob(client, REPO, config), push_blob(client, REPO, layer)}
    PackageFile.objects.update(created=ago(days=1))
    assert run_cleanup(grace=HOUR).staged_files == 2

    response = put_manifest(client, REPO, "1.0", image_manifest(config, [layer]))

    # The blob rows are still there, but no longer visible in this image.
    error = assert_error(response, 404, "BLOB_UNKNOWN")
    assert error["detail"]["digest"] in pushed
    assert PackageBlob.objects.count() == 2


# Empty packages and orphaned properties


def test_packages_without_versions_are_dropped_with_their_properties(alice, web):
    empty = versions.get_or_create_package(alice.package_owner, "container", "empty")
    properties.set_property(RefType.PACKAGE, empty.pk, "repository", "empty")
    versions.create_version(web, "1.0")

    report = run_cleanup()

    assert report == CleanupReport(packages=1)
    assert list(Package.objects.values_list("name", flat=True)) == ["web"]
    assert not PackageProperty.objects.exists()


def test_orphaned_properties_are_dropped_and_the_others_kept(alice, web, blob):
    version = versions.create_version(web, "1.0")
    file = versions.add_file(version, blob, "layer")
    live = [(RefType.PACKAGE, web.pk), (RefType.VERSION, version.pk), (RefType.FILE, file.pk)]
    gone = [
        (RefType.PACKAGE, web.pk + 1000),
        (RefType.VERSION, version.pk + 1000),
        (RefType.FILE, file.pk + 1000),
    ]
    for ref_type, ref_id in live + gone:
        properties.set_property(ref_type, ref_id, "name", "value")

    run_cleanup()

    left = set(PackageProperty.objects.values_list("ref_type", "ref_id"))
    assert left == set(live)


# Unreferenced blobs


def stored(store, data: bytes, **age) -> PackageBlob:
    blob = blobs.store_blob(io.BytesIO(data), store=store).blob
    if age:
        PackageBlob.objects.filter(pk=blob.pk).update(created=ago(**age))
    return blob


def test_unreferenced_blobs_past_the_grace_period_go_from_database_and_storage(
    alice, web, store, django_capture_on_commit_callbacks
):
    used = stored(store, b"used by a version", days=2)
    versions.add_file(versions.create_version(web, "1.0"), used, "layer")
    unused = stored(store, b"used by nothing", days=2)
    fresh = stored(store, b"uploaded a minute ago")

    with django_capture_on_commit_callbacks(execute=True):
        report = run_cleanup(grace=HOUR)

    assert report == CleanupReport(blobs=1, bytes_freed=len(b"used by nothing"))
    assert set(PackageBlob.objects.values_list("pk", flat=True)) == {used.pk, fresh.pk}
    assert not store.exists(unused.storage_key)
    assert store.exists(used.storage_key)
    assert store.exists(fresh.storage_key)
    assert not BlobDeletion.objects.exists()


def test_garbage_collection_logs_the_blobs_it_drops_and_the_objects_it_deletes(
    db, store, caplog, django_capture_on_commit_callbacks
):
    unused = stored(store, b"used by nothing", days=2)

    with (
        caplog.at_level("INFO", logger="packages_core.services.cleanup"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        run_cleanup(grace=HOUR)

    messages = [record.getMessage() for record in caplog.records]
    assert f"cleanup: dropped 1 unreferenced blob(s), {unused.size} bytes" in messages
    assert f"cleanup: deleted {unused.storage_key}" in messages


def test_blobs_are_collected_in_batches_with_progress(
    db, store, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("packages_core.services.cleanup.BLOB_BATCH", 2)
    doomed = [stored(store, f"blob {n}".encode(), days=1) for n in range(5)]
    steps = []

    with django_capture_on_commit_callbacks(execute=True):
        report = run_cleanup(grace=HOUR, progress=lambda *step: steps.append(step))

    assert report == CleanupReport(blobs=5, bytes_freed=sum(blob.size for blob in doomed))
    # First the walk through storage, which examines the five objects.
    assert steps == [("storage", 5, None), ("blobs", 2, 5), ("blobs", 4, 5), ("blobs", 5, 5)]
    assert not any(store.exists(blob.storage_key) for blob in doomed)


def test_progress_reports_every_step_in_gitea_order(
    client, alice, web, store, django_capture_on_commit_callbacks
):
    dated_versions(web, {"1.0": 2})
    make_rule(alice.package_owner, keep_count=0)
    upload_with_bytes(client, b"0123456789")
    push_blob(client, REPO, b"staged")
    stored(store, b"unreferenced")
    age_everything(days=1)
    BlobUpload.objects.update(updated=ago(days=1))
    steps = []

    with django_capture_on_commit_callbacks(execute=True):
        run_cleanup(grace=HOUR, progress=lambda *step: steps.append(step))

    order = list(dict.fromkeys(step for step, _, _ in steps))
    assert order == ["storage", "rules", "uploads", "staged files", "packages", "blobs"]
    for name in order[1:]:
        last = [(done, total) for step, done, total in steps if step == name][-1]
        assert last[0] == last[1], f"{name} ends at its total"
    # The walk through storage cannot know its total in advance; it counts what it saw.
    walked = [(done, total) for step, done, total in steps if step == "storage"]
    assert walked
    assert all(total is None for _, total in walked)


# Pending deletions (tombstones)


def test_storing_the_bytes_again_calls_off_their_pending_deletion(
    store, db, django_capture_on_commit_callbacks
):
    data = b"dropped, then uploaded again"
    blob = stored(store, data, days=1)
    with django_capture_on_commit_callbacks() as callbacks:
        assert run_cleanup(grace=HOUR).blobs == 1
    assert BlobDeletion.objects.filter(sha256=blob.sha256).exists()
    assert store.exists(blob.storage_key), "the object waits for the commit"

    again = blobs.store_blob(io.BytesIO(data), store=store)
    assert again.created
    assert not BlobDeletion.objects.exists()
    for callback in callbacks:  # the commit of the cleanup happens now
        callback()

    assert store.exists(blob.storage_key)
    with store.open(blob.storage_key) as handle:
        assert handle.read() == data


def test_purge_objects_deletes_the_object_nobody_uploaded_again(store, db):
    blob = stored(store, b"gone for good")
    PackageBlob.objects.filter(pk=blob.pk).delete()
    BlobDeletion.objects.create(sha256=blob.sha256)

    purge_objects([blob.sha256], store=store)

    assert not store.exists(blob.storage_key)
    assert not BlobDeletion.objects.exists()


def test_purge_objects_keeps_the_object_of_a_blob_that_has_a_row(store, db):
    blob = stored(store, b"back again")
    BlobDeletion.objects.create(sha256=blob.sha256)

    purge_objects([blob.sha256], store=store)

    assert store.exists(blob.storage_key)
    assert not BlobDeletion.objects.exists()


def test_purge_objects_leaves_objects_without_a_pending_deletion_alone(store, db):
    blob = stored(store, b"not ours to delete")
    PackageBlob.objects.filter(pk=blob.pk).delete()

    purge_objects([blob.sha256], store=store)

    assert store.exists(blob.storage_key)


def test_deletions_a_run_left_pending_are_purged_by_the_next(
    store, db, django_capture_on_commit_callbacks
):
    blob = stored(store, b"left by a run that stopped")
    PackageBlob.objects.filter(pk=blob.pk).delete()
    BlobDeletion.objects.create(sha256=blob.sha256)

    with django_capture_on_commit_callbacks(execute=True):
        report = run_cleanup(grace=HOUR)

    assert report == CleanupReport(), "its row was counted by the run that dropped it"
    assert not store.exists(blob.storage_key)
    assert not BlobDeletion.objects.exists()


# Dry runs


def everything(root: Path) -> dict:
    """What a dry run must not change: every table cleanup touches, and every file."""
    tables = (
        BlobDeletion,
        BlobUpload,
        Package,
        PackageBlob,
        PackageFile,
        PackageProperty,
        PackageVersion,
    )
    state = {model.__name__: sorted(model.objects.values_list("pk", flat=True)) for model in tables}
    state["files"] = stored_files(root)
    return state


def test_dry_run_reports_what_a_real_run_then_does_and_changes_nothing(
    client, alice, store, package_storage, django_capture_on_commit_callbacks
):
    first = push_image(client, REPO, "1.0", layers=(b"only in 1.0",))
    push_image(client, REPO, "2.0", layers=(b"only in 2.0",))
    empty = versions.get_or_create_package(alice.package_owner, "container", "empty")
    properties.set_property(RefType.VERSION, 10**6, "orphan", "yes")
    unreferenced = stored(store, b"unreferenced")
    upload_with_bytes(client, b"half an upload")
    age_everything(days=2)
    PackageVersion.objects.filter(version="2.0").update(created=ago(days=1))
    BlobUpload.objects.update(updated=ago(days=2))
    make_rule(alice.package_owner, keep_count=1)
    before = everything(package_storage)

    with django_capture_on_commit_callbacks(execute=True):
        dry = run_cleanup(grace=HOUR, dry_run=True)

    assert everything(package_storage) == before
    expected = CleanupReport(
        versions=1,  # 1.0
        uploads=1,
        staged_files=3,  # the shared config and two layers
        packages=1,  # empty
        blobs=3,  # 1.0's manifest and layer, and the unreferenced blob
        bytes_freed=len(b"half an upload")
        + len(first.manifest)
        + len(b"only in 1.0")
        + len(b"unreferenced"),
    )
    assert dry == expected

    with django_capture_on_commit_callbacks(execute=True):
        real = run_cleanup(grace=HOUR)

    assert real == dry
    assert image_versions() == {"2.0"}
    assert not Package.objects.filter(pk=empty.pk).exists()
    assert not PackageProperty.objects.exists()
    assert not store.exists(unreferenced.storage_key)
    gone = {blob_key(digest.partition(":")[2]) for digest in (first.digest, first.layer_digests[0])}
    assert not any(store.exists(key) for key in gone)


# Deleting a tag frees its bytes


def test_deleting_a_tag_then_cleaning_up_without_grace_frees_its_bytes(
    client, alice, package_storage, django_capture_on_commit_callbacks
):
    push_image(client, REPO, "keep", layers=(b"kept layer",))
    baseline = stored_files(package_storage / "blobs")
    gone = push_image(
        client,
        REPO,
        "gone",
        layers=(b"x" * 65536, b"y" * 1024),
        config=image_config(labels={"build": "gone"}),
    )
    grown = stored_files(package_storage / "blobs")
    added = set(grown) - set(baseline)
    assert len(added) == 4  # config, two layers, manifest

    response = send(client, "DELETE", f"/v2/{REPO}/manifests/gone", auth=ALICE)
    assert response.status_code == 202
    with django_capture_on_commit_callbacks(execute=True):
        report = run_cleanup(grace=timedelta(0))

    assert report.blobs == 4
    assert report.bytes_freed == sum(grown[path] for path in added)
    assert report.bytes_freed == 65536 + 1024 + len(gone.manifest) + len(
        image_config(labels={"build": "gone"})
    )
    assert stored_files(package_storage / "blobs") == baseline
    assert sum(stored_files(package_storage / "blobs").values()) == sum(baseline.values())
    assert image_versions() == {"keep"}
