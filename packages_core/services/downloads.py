"""Download counts, tallied in memory and written in batches: a pull never writes.

A manifest GET is the most frequent request a registry answers. Writing its count
then and there made every pull a database write, so a full disk, a locked SQLite file
or a read-only replica failed pulls. Here a pull adds one to a tally in the process's
memory; a background thread writes the tallies every FLUSH_INTERVAL seconds (a few
UPDATEs, one per distinct count), and once more when the process exits. A write that
fails keeps its tallies for the next try. A process killed with SIGKILL loses at most
one interval's counts.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import Counter, defaultdict

from django.db import DatabaseError, connections, transaction
from django.db.models import F

from packages_core.models import PackageVersion

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 10.0


class _Tally:
    """The counts of one process not yet written, and the thread that writes them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts: Counter[int] = Counter()
        self.pid = os.getpid()
        self.flusher: threading.Thread | None = None
        self.stop = threading.Event()

    def add(self, version_id: int) -> None:
        with self.lock:
            if self.pid != os.getpid():  # forked: the parent's tallies are the parent's
                self.__init__()
            self.counts[version_id] += 1
            if self.flusher is None:
                self.start_flushing()

    def take(self) -> Counter[int]:
        with self.lock:
            taken, self.counts = self.counts, Counter()
            return taken

    def give_back(self, counts: Counter[int]) -> None:
        with self.lock:
            self.counts.update(counts)

    def start_flushing(self) -> None:
        self.flusher = threading.Thread(
            target=self._flush_every_interval, name="download-counts", daemon=True
        )
        self.flusher.start()

    def _flush_every_interval(self) -> None:
        while not self.stop.wait(FLUSH_INTERVAL):
            flush()
            # This thread's connection would otherwise sit idle between flushes.
            connections.close_all()


_tally = _Tally()


def count_download(version_id: int) -> None:
    """Count one download of the version; written to the database within the interval."""
    _tally.add(version_id)


def flush() -> int:
    """Write the tallies now; how many downloads were written (0 if the write failed,
    in which case they are kept for the next flush).
    """
    counts = _tally.take()
    if not counts:
        return 0
    by_count: dict[int, list[int]] = defaultdict(list)
    for version_id, count in counts.items():
        by_count[count].append(version_id)
    try:
        with transaction.atomic():
            for count, version_ids in by_count.items():
                PackageVersion.objects.filter(pk__in=version_ids).update(
                    download_count=F("download_count") + count
                )
    except DatabaseError as error:
        _tally.give_back(counts)
        logger.warning("download counts could not be written, kept for later: %s", error)
        return 0
    return sum(counts.values())


def pending() -> int:
    """Downloads counted in this process and not yet written."""
    with _tally.lock:
        return sum(_tally.counts.values())


@atexit.register
def _flush_at_exit() -> None:
    if _tally.pid == os.getpid() and _tally.counts:
        try:
            flush()
        except Exception:  # the interpreter is going away; nothing else to tell
            logger.exception("download counts could not be written at exit")
