"""Multi-arch images on the pages: an index's platforms listed under it, and one size
for a version in the list and on its page.
"""

from __future__ import annotations

import pytest

from tests.registry_helpers import push_image
from tests.web_helpers import page

pytestmark = pytest.mark.django_db


# The versions page


def test_versions_page_shows_platforms_under_their_index(client, multi_arch):
    response = page(client, "package_versions", "alice", "multi")

    rows = response.context["versions"]
    assert [row.version for row in rows] == ["latest"]
    assert [(p.platform, p.digest) for p in rows[0].platforms] == [
        ("linux/amd64", multi_arch.amd64.digest),
        ("linux/arm64/v8", multi_arch.arm64.digest),
    ]
    assert response.context["page"].paginator.count == 1


def test_untagged_filter_leaves_out_platforms(client, multi_arch):
    response = page(client, "package_versions", "alice", "multi", query="?type=untagged")

    assert list(response.context["versions"]) == []


# Sizes


def test_an_index_has_one_size_in_the_list_and_on_its_page(client, multi_arch):
    listed = page(client, "package_versions", "alice", "multi").context["versions"][0]
    detail = page(client, "package_version", "alice", "multi", "latest").context["detail"]

    assert listed.size == detail.total_size
    assert listed.size > sum(p.size for p in detail.platforms)  # the attestation too


def test_an_image_has_one_size_in_the_list_and_on_its_page(client, alice):
    push_image(client, "alice/one", "1.0", layers=(b"a", b"b"))

    listed = page(client, "package_versions", "alice", "one").context["versions"][0]
    detail = page(client, "package_version", "alice", "one", "1.0").context["detail"]

    assert listed.size == detail.total_size
