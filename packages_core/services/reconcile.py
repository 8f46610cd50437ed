"""Storage reconciled with the database: what killed processes left behind is removed.

A process killed in the middle of a push (`kill -9`, the OOM killer, a lost node) leaves
bytes that no row names and that no code path will delete: the draft of a monolithic
upload (`*.part` on disk, an incomplete multipart upload on S3), a blob written under
its content address whose row never committed, the staged bytes, lock file or pieces of
an upload session whose row is gone. The database steps of cleanup only follow rows,
so this step walks the store, a page of keys at a time, and asks the database about
each page with one query. Once older than the grace period it removes:

- under the upload prefix, everything that is not a live session's;
- under the blob prefix, drafts, and blob objects that no `PackageBlob` row names (nor
  a `BlobDeletion`, whose object the garbage collection step deletes in its own way);
- on S3, multipart uploads under either prefix never completed nor aborted, except
  a live session's.

Why nothing a push needs is removed:

- Age. A push writes its bytes first and commits the row that names them after, so a
  listing can find a blob file whose row is not committed yet, and a draft is nobody's
  row at all. Nothing younger than the grace period (24 hours by default, far longer
  than the seconds between a file and its row) is a candidate, so every write in
  flight is left alone; only with a grace period shorter than a push can one of its
  drafts on S3 be taken (the push fails and the client tries again).
- Sessions. A session's row commits before its first byte is staged, and anything of a
  session whose row exists is kept, whatever its age: cleanup's upload step decides
  when a session is idle and drops it with its bytes.
- Writer locks (local disk). The writer of a draft holds a `flock` on it until it is
  done with it (ContentStore.begin); a draft is removed only while cleanup holds that
  lock, which it cannot get while the writer lives.
- Claims (blob objects). An old blob object with no row can be adopted by a new push
  of the same bytes at any moment: `register_blob` inserts the row, finds the object
  there and does not write it again. Age cannot tell, so before deleting such an
  object cleanup inserts a row for its sha256 itself, in a transaction it then rolls
  back. The unique constraint makes that insert wait for a push inserting the same
  row, and fail if the push committed (the object is the push's now: kept); while
  cleanup's row stands, a push of those bytes waits at its own insert, then finds the
  object gone and writes it again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from packages_core.content_store import (
    BLOB_PREFIX,
    LIST_PAGE_SIZE,
    ContentStore,
    IncompleteUpload,
    StoredObject,
    blob_sha256,
    session_of,
    upload_prefix,
)
from packages_core.models import BlobDeletion, BlobUpload, PackageBlob
from packages_core.storage.keys import DRAFT_SUFFIX, LOCK_SUFFIX

logger = logging.getLogger(__name__)

# Keys listed and checked against the database at a time.
PAGE_SIZE = LIST_PAGE_SIZE
# A writer creates its draft, then locks it: an empty draft this young may be one
# whose lock is a moment away, even with no grace period.
UNLOCKED_DRAFT_AGE = timedelta(minutes=1)

# (step, objects examined so far, None: the total is not known before the walk ends).
Progress = Callable[[str, int, None], None]


def reconcile_storage(
    report, *, cutoff: datetime, dry_run: bool, progress: Progress, store=None
) -> None:
    """Remove (or, in a dry run, only count) what crashes left in storage before
    `cutoff`; the counts and bytes go to `report` (cleanup's CleanupReport, which
    is not imported here: cleanup imports this module).
    """
    sweep = _Sweep(report, store or ContentStore.default(), cutoff=cutoff, dry_run=dry_run)
    for page in sweep.store.list_objects(upload_prefix(), page_size=PAGE_SIZE):
        sweep.upload_objects(page)
        progress("storage", sweep.examined, None)
    for page in sweep.store.list_objects(BLOB_PREFIX, page_size=PAGE_SIZE):
        sweep.blob_objects(page)
        progress("storage", sweep.examined, None)
    for prefix in (upload_prefix(), BLOB_PREFIX):
        for page in sweep.store.incomplete_uploads(prefix, page_size=PAGE_SIZE):
            sweep.incomplete_uploads(page)
            progress("storage", sweep.examined, None)


class _Sweep:
    """One walk: what it has examined, and the report it counts removals in."""

    def __init__(self, report, store: ContentStore, *, cutoff: datetime, dry_run: bool):
        self.report, self.store, self.dry_run = report, store, dry_run
        self.cutoff = cutoff if timezone.is_aware(cutoff) else timezone.make_aware(cutoff)
        self.unlocked_since = timezone.now() - UNLOCKED_DRAFT_AGE
        self.local = store.is_local
        self.examined = 0

    # Upload staging: sessions' files and pieces, drafts, staged blobs.

    def upload_objects(self, page: list[StoredObject]) -> None:
        self.examined += len(page)
        old = [found for found in page if found.modified < self.cutoff]
        live = _live_sessions(found.key for found in old)
        unowned, ended, locks = [], [], []
        for found in old:
            session = session_of(found.key)
            if session is None:
                unowned.append(found)
            elif session not in live:
                (locks if found.key.endswith(LOCK_SUFFIX) else ended).append(found)
        self._remove_unowned(unowned)
        self._remove(ended, "orphan_uploads", "staged bytes of an ended upload session")
        self._remove(locks, "orphan_locks", "lock file of an ended upload session")

    # Blobs: objects under their content address, and drafts beside them.

    def blob_objects(self, page: list[StoredObject]) -> None:
        self.examined += len(page)
        old = [found for found in page if found.modified < self.cutoff]
        addressed = {sha256: found for found in old if (sha256 := blob_sha256(found.key))}
        self._remove_unowned([found for found in old if found.key.endswith(DRAFT_SUFFIX)])
        if not addressed:
            return
        # One query for the page: rows, and deletions the GC step is finishing.
        known = set(
            PackageBlob.objects.filter(sha256__in=addressed)
            .order_by()
            .values_list("sha256", flat=True)
            .union(
                BlobDeletion.objects.filter(sha256__in=addressed)
                .order_by()
                .values_list("sha256", flat=True)
            )
        )
        orphans = [found for sha256, found in addressed.items() if sha256 not in known]
        if not orphans:
            return
        what = "blob object no row names"
        if self.dry_run:
            self._remove(orphans, "orphan_blobs", what)
            return
        # One claim at a time: holding one while waiting for another could close a
        # cycle with a push that inserts two of them in the other order.
        for found in orphans:
            with transaction.atomic():
                if _claim(blob_sha256(found.key)):
                    self._remove([found], "orphan_blobs", what)
                # The claim was only ever a lock: its row is never to be seen.
                transaction.set_rollback(True)

    # S3 multipart uploads never completed.

    def incomplete_uploads(self, page: list[IncompleteUpload]) -> None:
        self.examined += len(page)
        old = [upload for upload in page if upload.initiated < self.cutoff]
        live = _live_sessions(upload.key for upload in old)
        for upload in old:
            if session_of(upload.key) in live:
                continue
            size = self.store.incomplete_size(upload)
            if not self.dry_run:
                self.store.abort_incomplete(upload)
            self.report.orphan_multipart += 1
            self.report.bytes_freed += size
            self._log(upload.key, "incomplete multipart upload", size)

    # Removing.

    def _remove_unowned(self, found: list[StoredObject]) -> None:
        """Drafts and staged blobs: nothing but their writer knows them."""
        what = "draft or staged bytes of a push that is gone"
        if not self.local:
            self._remove(found, "orphan_uploads", what)
            return
        for draft in found:
            if draft.size == 0 and draft.modified >= self.unlocked_since:
                continue
            with self.store.abandoned(draft.key) as abandoned:
                if abandoned:
                    # Under the lock: no writer can take it up meanwhile.
                    self._remove([draft], "orphan_uploads", what)

    def _remove(self, found: list[StoredObject], counter: str, what: str) -> None:
        if not found:
            return
        if not self.dry_run:
            self.store.delete_many(item.key for item in found)
        setattr(self.report, counter, getattr(self.report, counter) + len(found))
        for item in found:
            self.report.bytes_freed += item.size
            self._log(item.key, what, item.size)

    def _log(self, key: str, what: str, size: int) -> None:
        done = "would remove" if self.dry_run else "removed"
        logger.info("storage: %s %s (%s, %d bytes)", done, key, what, size)


def _live_sessions(keys: Iterable[str]) -> set[uuid.UUID]:
    """The sessions among those `keys` belong to whose rows exist; one query."""
    ids = {session_of(key) for key in keys} - {None}
    if not ids:
        return set()
    return set(BlobUpload.objects.filter(pk__in=ids).values_list("pk", flat=True))


def _claim(sha256: str) -> bool:
    """Take the blob row's unique key for `sha256` until the transaction ends; False if
    a push made that row first (waiting for its transaction to end, if it has not).
    """
    try:
        with transaction.atomic():
            PackageBlob.objects.create(sha256=sha256, size=0)
    except IntegrityError:
        return False
    return True
