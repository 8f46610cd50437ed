"""Download counts: tallied per process, written in batches by a background thread."""

from __future__ import annotations

import threading
import time

import pytest

from packages_core.models import PackageVersion
from packages_core.services import downloads, versions


@pytest.fixture
def two_versions(alice):
    package = versions.get_or_create_package(alice.package_owner, "container", "web")
    return [versions.create_version(package, tag, creator=alice) for tag in ("1.0", "2.0")]


def counts(*found) -> list[int]:
    return [PackageVersion.objects.get(pk=v.pk).download_count for v in found]


@pytest.mark.django_db
def test_a_flush_writes_every_tally_and_empties_them(two_versions):
    one, two = two_versions
    for _ in range(3):
        downloads.count_download(one.pk)
    downloads.count_download(two.pk)
    assert downloads.pending() == 4

    assert downloads.flush() == 4

    assert counts(one, two) == [3, 1]
    assert downloads.pending() == 0
    assert downloads.flush() == 0


@pytest.mark.django_db
def test_counts_of_a_deleted_version_are_dropped_quietly(two_versions):
    one, two = two_versions
    downloads.count_download(one.pk)
    downloads.count_download(two.pk)
    versions.remove_version(one)

    assert downloads.flush() == 2
    assert counts(two) == [1]


@pytest.mark.django_db(transaction=True)
def test_the_background_thread_writes_the_tallies_within_its_interval(two_versions, monkeypatch):
    monkeypatch.setattr(downloads, "FLUSH_INTERVAL", 0.05)
    tally = downloads._Tally()
    monkeypatch.setattr(downloads, "_tally", tally)
    one, _ = two_versions
    try:
        tally.counts[one.pk] += 2
        # start_flushing() is stubbed out for tests (conftest); run what it starts.
        tally.flusher = threading.Thread(target=tally._flush_every_interval, daemon=True)
        tally.flusher.start()
        deadline = time.monotonic() + 10
        while counts(one) != [2] and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        tally.stop.set()
        if tally.flusher is not None:
            tally.flusher.join(5)

    assert counts(one) == [2]
    assert tally.counts == {}
