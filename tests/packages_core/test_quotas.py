"""Quotas: versions and bytes per owner, bytes per blob; 403 DENIED saying which limit."""

import io

import pytest
from django.core.exceptions import ImproperlyConfigured
from registry_helpers import (
    ALICE,
    ROOT,
    assert_error,
    digest_of,
    push_blob,
    push_image,
    send,
    start_upload,
)

from forge import environment
from packages_core.models import BlobUpload, OwnerQuota, PackageBlob
from packages_core.services import quotas

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    def set_limits(versions=-1, owner_bytes=-1, blob_bytes=-1):
        settings.PACKAGES = {
            "QUOTA_OWNER_VERSIONS": versions,
            "QUOTA_OWNER_BYTES": owner_bytes,
            "QUOTA_BLOB_BYTES": blob_bytes,
        }

    return set_limits


# The service


def test_limits_come_from_settings_unless_the_owner_has_its_own(alice, limits):
    limits(versions=5, owner_bytes=1000, blob_bytes=100)
    owner = alice.package_owner
    assert quotas.limits_for(owner) == quotas.Limits(5, 1000, 100)
    OwnerQuota.objects.create(owner=owner, max_bytes=-1, max_blob_bytes=50)
    assert quotas.limits_for(owner) == quotas.Limits(5, -1, 50)


def test_usage_counts_published_versions_and_each_blob_once(client, alice):
    push_image(client, "alice/app", "1.0", layers=(b"a" * 100,))
    push_image(client, "alice/app", "2.0", layers=(b"a" * 100,))  # same layer again
    usage = quotas.usage(alice.package_owner)
    assert usage.versions == 2
    sizes = PackageBlob.objects.filter(files__version__package__owner=alice.package_owner)
    assert usage.bytes == sum(blob.size for blob in sizes.distinct())


def test_a_blob_over_the_per_blob_limit_is_refused_with_the_limit_named(alice, limits):
    limits(blob_bytes=100)
    with pytest.raises(quotas.QuotaExceeded, match="limit of 100 bytes per blob"):
        quotas.check_blob(alice.package_owner, 101)
    quotas.check_blob(alice.package_owner, 100)


def test_a_refusal_is_logged_naming_the_owner_and_the_limit(alice, limits, caplog):
    limits(versions=0)
    with (
        caplog.at_level("INFO", logger="packages_core.services.quotas"),
        pytest.raises(quotas.QuotaExceeded),
    ):
        quotas.check_new_version(alice.package_owner)
    assert caplog.messages == ["quota: refused for alice: alice has 0 versions, the limit is 0"]


def test_site_admins_bypass_every_quota(alice, site_admin, limits):
    limits(versions=0, owner_bytes=0, blob_bytes=0)
    quotas.check_blob(alice.package_owner, 10**9, user=site_admin)
    quotas.check_new_version(alice.package_owner, user=site_admin)
    with pytest.raises(quotas.QuotaExceeded):
        quotas.check_new_version(alice.package_owner, user=alice)


# On the wire


def test_monolithic_upload_over_the_blob_limit_is_403_and_stores_nothing(client, alice, limits):
    limits(blob_bytes=10)
    data = b"x" * 11
    response = send(
        client, "POST", f"/v2/alice/app/blobs/uploads/?digest={digest_of(data)}", data, auth=ALICE
    )
    entry = assert_error(response, 403, "DENIED")
    assert "per blob" in entry["message"]
    assert not PackageBlob.objects.exists()


def test_a_chunk_that_would_pass_the_limit_is_403_before_it_is_read(client, alice, limits):
    limits(blob_bytes=10)
    location = start_upload(client, "alice/app")
    assert send(client, "PATCH", location, b"12345", auth=ALICE).status_code == 202
    response = send(client, "PATCH", location, b"678901", auth=ALICE)
    assert_error(response, 403, "DENIED")
    assert BlobUpload.objects.get().bytes_received == 5


def test_a_chunked_body_that_grows_past_the_limit_ends_the_upload(client, alice, limits):
    limits(blob_bytes=10)
    location = start_upload(client, "alice/app")
    response = client.generic(
        "PATCH",
        location,
        b"",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(b"x" * 20)},
        **ALICE,
    )
    assert_error(response, 403, "DENIED")
    assert not BlobUpload.objects.exists()


def test_finishing_an_upload_checks_the_owners_total(client, alice, limits):
    push_blob(client, "alice/app", b"a" * 60)
    limits(owner_bytes=100)
    data = b"b" * 50
    location = start_upload(client, "alice/app")
    response = send(client, "PUT", f"{location}?digest={digest_of(data)}", data, auth=ALICE)
    entry = assert_error(response, 403, "DENIED")
    assert "limit of 100 bytes" in entry["message"]


def test_a_new_version_over_the_limit_is_403_but_moving_a_tag_is_not(client, alice, limits):
    push_image(client, "alice/app", "1.0", layers=(b"one",))
    limits(versions=1)
    push_image(client, "alice/app", "1.0", layers=(b"two",))  # the same tag moves
    with pytest.raises(AssertionError, match="403"):
        push_image(client, "alice/app", "2.0", layers=(b"three",))


def test_owner_overrides_apply_on_the_wire(client, alice, limits):
    OwnerQuota.objects.create(owner=alice.package_owner, max_blob_bytes=3)
    data = b"four"
    response = send(
        client, "POST", f"/v2/alice/app/blobs/uploads/?digest={digest_of(data)}", data, auth=ALICE
    )
    assert_error(response, 403, "DENIED")


def test_site_admin_pushes_past_the_quota(client, alice, site_admin, limits):
    limits(blob_bytes=1)
    digest = push_blob(client, "alice/app", b"bigger than one byte", auth=ROOT)
    assert digest.startswith("sha256:")


# Settings


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", -1),
        ("-1", -1),
        ("1048576", 1048576),
        ("500MiB", 500 * 2**20),
        ("10GB", 10 * 10**9),
        ("1.5KiB", 1536),
    ],
)
def test_sizes_are_read_with_their_units(raw, expected):
    assert environment.get_size({"X": raw}, "X") == expected


@pytest.mark.parametrize("raw", ["ten", "5XB", "-5", "GiB"])
def test_bad_sizes_are_refused(raw):
    with pytest.raises(ImproperlyConfigured, match="X must be a size"):
        environment.get_size({"X": raw}, "X")
