"""`manage.py cleanup_packages`: its options, its one-line summary, its progress bar."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from packages_core.models import CleanupRule, PackageBlob
from packages_core.services import versions

pytestmark = pytest.mark.django_db

# What follows the main figures when storage holds nothing without a row.
NO_ORPHANS = (
    "orphaned in storage: 0 blob objects, 0 upload files, 0 lock files, 0 multipart uploads"
)
NOTHING = (
    "0 versions removed, 0 blobs removed, 0 bytes freed "
    f"(0 idle uploads, 0 staged files, 0 empty packages; {NO_ORPHANS}).\n"
)


class TerminalStream(io.StringIO):
    """What a terminal looks like to the command: a stream that is a TTY."""

    def isatty(self) -> bool:
        return True


def cleanup(*args, stderr=None) -> tuple[str, str]:
    """Run the command; what it wrote to stdout and to stderr."""
    stdout, stderr = io.StringIO(), stderr if stderr is not None else io.StringIO()
    call_command("cleanup_packages", *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def test_prints_the_summary_of_what_it_removed(blob, store, django_capture_on_commit_callbacks):
    # `blob` is 11 bytes ("layer bytes") that nothing refers to.
    with django_capture_on_commit_callbacks(execute=True):
        out, err = cleanup("--older-than", "0s")

    assert out == (
        "0 versions removed, 1 blob removed, 11 bytes freed "
        f"(0 idle uploads, 0 staged files, 0 empty packages; {NO_ORPHANS}).\n"
    )
    assert err == ""
    assert not PackageBlob.objects.exists()
    assert not store.exists(blob.storage_key)


def test_summary_counts_versions_removed_by_rules(alice, django_capture_on_commit_callbacks):
    package = versions.get_or_create_package(alice.package_owner, "container", "web")
    for name in ("1.0", "2.0", "3.0"):
        versions.create_version(package, name)
    CleanupRule.objects.create(owner=alice.package_owner, type="container", keep_count=1)

    with django_capture_on_commit_callbacks(execute=True):
        out, _ = cleanup("--older-than", "0s")

    assert out == (
        "2 versions removed, 0 blobs removed, 0 bytes freed "
        f"(0 idle uploads, 0 staged files, 0 empty packages; {NO_ORPHANS}).\n"
    )
    assert list(package.versions.values_list("version", flat=True)) == ["3.0"]


def test_dry_run_says_what_would_go_and_keeps_it(blob, store, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        out, _ = cleanup("--older-than", "0s", "--dry-run")

    assert out == (
        "Dry run: 0 versions would be removed, 1 blob would be removed, 11 bytes would be "
        f"freed (0 idle uploads, 0 staged files, 0 empty packages; {NO_ORPHANS}).\n"
    )
    assert PackageBlob.objects.filter(pk=blob.pk).exists()
    assert store.exists(blob.storage_key)


def test_grace_period_defaults_to_a_day(blob, store, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert cleanup() == (NOTHING, "")
    assert store.exists(blob.storage_key)

    PackageBlob.objects.update(created=timezone.now() - timedelta(hours=25))
    with django_capture_on_commit_callbacks(execute=True):
        out, _ = cleanup()

    assert out.startswith("0 versions removed, 1 blob removed, 11 bytes freed")
    assert not store.exists(blob.storage_key)


def test_older_than_keeps_younger_blobs(blob, store):
    PackageBlob.objects.update(created=timezone.now() - timedelta(minutes=10))

    assert cleanup("--older-than", "15m") == (NOTHING, "")
    assert PackageBlob.objects.filter(pk=blob.pk).exists()


@pytest.mark.parametrize("value", ["", "10", "5w", "-1h", "1.5h", "a day"])
def test_a_bad_older_than_is_a_command_error(db, value):
    with pytest.raises(CommandError, match="is not a duration like 30s, 15m, 24h or 7d"):
        cleanup(f"--older-than={value}")


def test_on_a_terminal_a_progress_bar_is_drawn_then_cleared(
    blob, django_capture_on_commit_callbacks
):
    terminal = TerminalStream()
    with django_capture_on_commit_callbacks(execute=True):
        out, err = cleanup("--older-than", "0s", stderr=terminal)

    assert out.startswith("0 versions removed, 1 blob removed")
    # The walk through storage first: a count, as its total is not known in advance.
    assert err.startswith("\rstorage       1 examined")
    bar = f"\rblobs         [{'#' * 30}] 1/1"
    assert bar in err
    assert err.endswith(f"\r{' ' * len(bar[1:])}\r"), "the line is wiped before the summary"


def test_without_a_terminal_no_progress_bar_is_written(blob, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        out, err = cleanup("--older-than", "0s", stderr=io.StringIO())

    assert out.startswith("0 versions removed, 1 blob removed")
    assert err == ""


def test_on_a_terminal_with_nothing_to_do_nothing_is_drawn(db):
    out, err = cleanup("--older-than", "0s", stderr=TerminalStream())

    assert (out, err) == (NOTHING, "")
