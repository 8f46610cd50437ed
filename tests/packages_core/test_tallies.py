"""What pulls record, noted per process and written in batches by a background thread."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.utils import timezone

from packages_core.models import AccessToken, PackageVersion
from packages_core.services import tallies, tokens, versions


@pytest.fixture
def two_versions(alice):
    package = versions.get_or_create_package(alice.package_owner, "container", "web")
    return [versions.create_version(package, tag, creator=alice) for tag in ("1.0", "2.0")]


def counts(*found) -> list[int]:
    return [PackageVersion.objects.get(pk=v.pk).download_count for v in found]


@pytest.mark.django_db
def test_a_flush_writes_every_download_and_empties_the_tallies(two_versions):
    one, two = two_versions
    for _ in range(3):
        tallies.count_download(one.pk)
    tallies.count_download(two.pk)
    assert tallies.pending() == 4

    assert tallies.flush() == 4

    assert counts(one, two) == [3, 1]
    assert tallies.pending() == 0
    assert tallies.flush() == 0


@pytest.mark.django_db
def test_counts_of_a_deleted_version_are_dropped_quietly(two_versions):
    one, two = two_versions
    tallies.count_download(one.pk)
    tallies.count_download(two.pk)
    versions.remove_version(one)

    assert tallies.flush() == 2
    assert counts(two) == [1]


@pytest.mark.django_db
def test_a_tokens_last_use_is_written_as_the_latest_noted(alice):
    token, _ = tokens.create_access_token(alice, "ci", "read:package")
    now = timezone.now()
    tallies.note_token_use(token.pk, now - timedelta(seconds=30))
    tallies.note_token_use(token.pk, now)
    tallies.note_token_use(token.pk, now - timedelta(seconds=10))

    assert tallies.flush() == 1

    token.refresh_from_db()
    assert token.last_used_at == now


@pytest.mark.django_db
def test_a_last_use_never_goes_backwards(alice):
    token, _ = tokens.create_access_token(alice, "ci", "read:package")
    now = timezone.now()
    AccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
    tallies.note_token_use(token.pk, now - timedelta(minutes=5))  # noted by a slower process

    tallies.flush()

    token.refresh_from_db()
    assert token.last_used_at == now


@pytest.mark.django_db(transaction=True)
def test_the_background_thread_writes_the_tallies_within_its_interval(two_versions, monkeypatch):
    monkeypatch.setattr(tallies, "FLUSH_INTERVAL", 0.05)
    tally = tallies._Tally()
    monkeypatch.setattr(tallies, "_tally", tally)
    one, _ = two_versions
    try:
        tally.downloads[one.pk] += 2
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
    assert tally.downloads == {}


def last_pulls(*found) -> list:
    return [PackageVersion.objects.get(pk=v.pk).last_pulled for v in found]


@pytest.mark.django_db
def test_a_flush_writes_each_versions_latest_pull_and_leaves_others_unpulled(two_versions):
    one, two = two_versions
    now = timezone.now()
    tallies.count_download(one.pk, now - timedelta(seconds=30))
    tallies.count_download(one.pk, now)
    tallies.count_download(one.pk, now - timedelta(seconds=10))  # noted late, by a slow thread

    tallies.flush()

    assert last_pulls(one, two) == [now, None]
    assert counts(one, two) == [3, 0]


@pytest.mark.django_db
def test_versions_pulled_at_different_times_each_get_their_own(two_versions):
    one, two = two_versions
    now = timezone.now()
    tallies.count_download(one.pk, now - timedelta(minutes=2))
    tallies.count_download(two.pk, now)

    tallies.flush()

    assert last_pulls(one, two) == [now - timedelta(minutes=2), now]


@pytest.mark.django_db
def test_a_download_without_a_time_is_noted_as_pulled_now(two_versions):
    one, _ = two_versions
    before = timezone.now()
    tallies.count_download(one.pk)
    tallies.flush()

    (pulled,) = last_pulls(one)
    assert before <= pulled <= timezone.now()


@pytest.mark.django_db
def test_a_last_pull_never_goes_backwards(two_versions):
    one, two = two_versions
    now = timezone.now()
    PackageVersion.objects.filter(pk=one.pk).update(last_pulled=now)
    tallies.count_download(one.pk, now - timedelta(minutes=5))  # noted by a slower process
    tallies.count_download(two.pk, now - timedelta(minutes=5))

    tallies.flush()

    assert last_pulls(one, two) == [now, now - timedelta(minutes=5)]
    assert counts(one, two) == [1, 1]


@pytest.mark.django_db
def test_last_pulls_of_more_versions_than_a_batch_are_all_written(alice, monkeypatch):
    monkeypatch.setattr(tallies, "PULLED_BATCH", 3)
    package = versions.get_or_create_package(alice.package_owner, "container", "many")
    many = [versions.create_version(package, f"v{n}") for n in range(7)]
    now = timezone.now()
    for n, version in enumerate(many):
        tallies.count_download(version.pk, now - timedelta(seconds=n))

    tallies.flush()

    assert last_pulls(*many) == [now - timedelta(seconds=n) for n in range(7)]


@pytest.mark.django_db
def test_a_failed_flush_keeps_the_latest_pulls_for_the_next(two_versions, monkeypatch):
    one, _ = two_versions
    now = timezone.now()
    tallies.count_download(one.pk, now)

    def fail(pulled):
        raise DatabaseError("disk full")

    monkeypatch.setattr(tallies, "_write_last_pulls", fail)
    assert tallies.flush() == 0
    monkeypatch.undo()
    tallies.count_download(one.pk, now - timedelta(seconds=5))

    assert tallies.flush() == 2

    assert last_pulls(one) == [now]
    assert counts(one) == [2]
