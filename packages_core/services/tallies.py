"""What pulls record (download counts, last pulls, an access token's last use), in batches.

A manifest GET is the most frequent request a registry answers, and a CI token signs
in on every one. Writing a count or a last-use time then and there made pulls database
writes, so a full disk, a locked SQLite file or a read-only replica failed them. Here
a pull only notes it in the process's memory; a background thread writes what was
noted every FLUSH_INTERVAL seconds (a few UPDATEs), and once more when the process
exits. A write that fails keeps its notes for the next try. A process killed with
SIGKILL loses at most one interval's notes.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import Counter, defaultdict
from datetime import datetime

from django.db import DatabaseError, connections, transaction
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.utils import timezone

from packages_core.models import AccessToken, PackageVersion

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 10.0
# Versions whose last pull one UPDATE writes: each costs a few query parameters, and
# SQLite may allow as few as 999 in a statement.
PULLED_BATCH = 100


class _Tally:
    """One process's notes not yet written, and the thread that writes them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.downloads: Counter[int] = Counter()
        # The latest download noted of each version in `downloads`.
        self.pulled: dict[int, datetime] = {}
        self.token_uses: dict[int, datetime] = {}
        self.pid = os.getpid()
        self.flusher: threading.Thread | None = None
        self.stop = threading.Event()

    def note(self, *, download: int | None = None, token: int | None = None, when=None):
        with self.lock:
            if self.pid != os.getpid():  # forked: the parent's notes are the parent's
                self.__init__()
            if download is not None:
                self.downloads[download] += 1
                self.pulled[download] = max(when, self.pulled.get(download, when))
            if token is not None:
                self.token_uses[token] = max(when, self.token_uses.get(token, when))
            if self.flusher is None:
                self.start_flushing()

    def take(self) -> tuple[Counter[int], dict[int, datetime], dict[int, datetime]]:
        with self.lock:
            taken = self.downloads, self.pulled, self.token_uses
            self.downloads, self.pulled, self.token_uses = Counter(), {}, {}
            return taken

    def give_back(
        self,
        downloads: Counter[int],
        pulled: dict[int, datetime],
        token_uses: dict[int, datetime],
    ) -> None:
        with self.lock:
            self.downloads.update(downloads)
            for latest, given in ((self.pulled, pulled), (self.token_uses, token_uses)):
                for key, when in given.items():
                    latest[key] = max(when, latest.get(key, when))

    def start_flushing(self) -> None:
        self.flusher = threading.Thread(
            target=self._flush_every_interval, name="tallies", daemon=True
        )
        self.flusher.start()

    def _flush_every_interval(self) -> None:
        while not self.stop.wait(FLUSH_INTERVAL):
            flush()
            # This thread's connection would otherwise sit idle between flushes.
            connections.close_all()


_tally = _Tally()


def count_download(version_id: int, when: datetime | None = None) -> None:
    """Count one download of the version, at `when` (now) its latest pull so far;
    written to the database within the interval.
    """
    _tally.note(download=version_id, when=when or timezone.now())


def note_token_use(token_id: int, when: datetime) -> None:
    """Record that an access token was used at `when` (kept: the latest)."""
    _tally.note(token=token_id, when=when)


def flush() -> int:
    """Write the notes now: how many were written (0 if the write failed, in which case
    they are kept for the next flush).
    """
    downloads, pulled, token_uses = _tally.take()
    if not downloads and not token_uses:
        return 0
    by_count: dict[int, list[int]] = defaultdict(list)
    for version_id, count in downloads.items():
        by_count[count].append(version_id)
    try:
        with transaction.atomic():
            for count, version_ids in by_count.items():
                PackageVersion.objects.filter(pk__in=version_ids).update(
                    download_count=F("download_count") + count
                )
            _write_last_pulls(pulled)
            for token_id, when in token_uses.items():
                # Never backwards: another process may have written a later use.
                AccessToken.objects.filter(
                    Q(last_used_at__isnull=True) | Q(last_used_at__lt=when), pk=token_id
                ).update(last_used_at=when)
    except DatabaseError as error:
        _tally.give_back(downloads, pulled, token_uses)
        logger.warning("download counts and token uses could not be written, kept: %s", error)
        return 0
    return sum(downloads.values()) + len(token_uses)


def _write_last_pulls(pulled: dict[int, datetime]) -> None:
    """Each version's latest pull, one UPDATE per PULLED_BATCH versions, each row given
    its own time by a CASE on its key.
    """
    noted = sorted(pulled.items())
    for start in range(0, len(noted), PULLED_BATCH):
        batch = noted[start : start + PULLED_BATCH]
        latest = Case(
            *(When(pk=pk, then=Value(when)) for pk, when in batch),
            output_field=DateTimeField(),
        )
        # Never backwards: another process may have written a later pull.
        PackageVersion.objects.filter(
            Q(last_pulled__isnull=True) | Q(last_pulled__lt=latest),
            pk__in=[pk for pk, _ in batch],
        ).update(last_pulled=latest)


def pending() -> int:
    """Notes taken in this process and not yet written."""
    with _tally.lock:
        return sum(_tally.downloads.values()) + len(_tally.token_uses)


@atexit.register
def _flush_at_exit() -> None:
    if _tally.pid == os.getpid() and (_tally.downloads or _tally.token_uses):
        try:
            flush()
        except Exception:  # the interpreter is going away; nothing else to tell
            logger.exception("download counts and token uses could not be written at exit")
