"""Cleanup: owners' cleanup rules, then garbage collection, safe while pushes go on.

`run_cleanup` first reconciles storage with the database (services/reconcile.py:
what killed processes left in storage that no row names), then takes Gitea's steps in
Gitea's order: apply the enabled cleanup rules; drop upload sessions idle past the
grace period with their staged bytes; drop staged files (internal versions) no
manifest took up within it; drop packages left without versions (and properties
whose row is gone); delete unreferenced blobs, rows first and storage objects after
that has committed.

Why it cannot lose a blob a push needs:
- every writer that makes a file refer to a blob locks the blob row first
  (`blobs.lock_blobs`, or `register_blob`'s FOR UPDATE), then the package
  (`versions.lock_package`); GC locks blob rows FOR UPDATE SKIP LOCKED, so it skips
  a blob in use by a transaction in flight, and re-checks references under the lock;
- an upload records its blob and the file staging it in one transaction
  (`register_blob`'s claim), so a blob is never unreferenced between the two;
- objects are deleted after the commit that dropped their rows, under a lock on a
  `BlobDeletion` row that a new upload of the same bytes deletes instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from packages_core import types
from packages_core.content_store import ContentStore, blob_key
from packages_core.exceptions import InUse, InvalidInput, is_storage_full
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
from packages_core.services import uploads, versions, webhooks
from packages_core.services.properties import RefType
from packages_core.services.reconcile import reconcile_storage

logger = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=24)
DURATION = re.compile(r"\A(\d+)([smhd])\Z")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# Blobs are dropped this many to a transaction: few enough that locks are short.
BLOB_BATCH = 100

# (step, done, total): how far a step has got, for a progress bar; the total is None
# where it is not known until the step ends (the walk through storage).
Progress = Callable[[str, int, int | None], None]


def parse_duration(text: str) -> timedelta:
    """`0s`, `30s`, `15m`, `24h` or `7d` as a timedelta; InvalidInput otherwise."""
    match = DURATION.match(text.strip().lower())
    if match is None:
        raise InvalidInput(f"{text!r} is not a duration like 30s, 15m, 24h or 7d.")
    return timedelta(**{UNITS[match[2]]: int(match[1])})


@dataclass
class CleanupReport:
    versions: int = 0
    uploads: int = 0
    staged_files: int = 0
    packages: int = 0
    blobs: int = 0
    # Bytes of everything removed, orphans in storage included.
    bytes_freed: int = 0
    # Left in storage with no row, by processes that died (services/reconcile.py):
    # blob objects, upload files (drafts, staged bytes, pieces), sessions' lock files,
    # and S3 multipart uploads never completed.
    orphan_blobs: int = 0
    orphan_uploads: int = 0
    orphan_locks: int = 0
    orphan_multipart: int = 0
    # Steps the database could not write for (a full disk): done another time.
    held_up: list[str] = field(default_factory=list)

    def summary(self, *, dry_run: bool = False) -> str:
        """One line: versions and blobs removed and bytes freed, then the lesser steps,
        then what was found in storage with no row.
        """
        done = "would be removed" if dry_run else "removed"
        freed = "would be freed" if dry_run else "freed"
        return (
            f"{_count(self.versions, 'version')} {done}, {_count(self.blobs, 'blob')} {done}, "
            f"{filesizeformat(self.bytes_freed)} {freed} "
            f"({_count(self.uploads, 'idle upload')}, {_count(self.staged_files, 'staged file')}, "
            f"{_count(self.packages, 'empty package')}; orphaned in storage: "
            f"{_count(self.orphan_blobs, 'blob object')}, "
            f"{_count(self.orphan_uploads, 'upload file')}, "
            f"{_count(self.orphan_locks, 'lock file')}, "
            f"{_count(self.orphan_multipart, 'multipart upload')})."
        ).replace("\xa0", " ")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def run_cleanup(
    *, grace: timedelta = DEFAULT_GRACE, dry_run: bool = False, progress: Progress | None = None
) -> CleanupReport:
    """Every step, in order. A dry run does them all in one transaction that is rolled
    back, so its figures are exact (blobs freed by the rules included) and nothing,
    in the database or in storage, changes.

    Storage is reconciled first, while the rows are as they were: in a dry run the
    later steps drop rows without deleting their objects, and a walk after them
    would count those objects as orphans that the real run deletes with their rows.
    """
    report = CleanupReport()
    progress = progress or (lambda step, done, total: None)
    with transaction.atomic() if dry_run else _no_transaction():
        now = timezone.now()
        cutoff = now - grace
        steps = [
            ("storage", partial(reconcile_storage, cutoff=cutoff, dry_run=dry_run)),
            ("rules", partial(apply_rules, now=now)),
            ("idle uploads", partial(drop_idle_uploads, cutoff=cutoff)),
            ("staged files", partial(drop_staged_files, cutoff=cutoff)),
            ("empty packages", drop_empty_packages),
            ("blobs", partial(collect_blobs, cutoff=cutoff)),
        ]
        for name, step in steps:
            try:
                step(report, progress=progress)
            except Exception as error:
                # A full disk stops the writes of a step, not the cleanup: later steps
                # (deleting objects frees room) may still do their part. A dry run
                # writes nothing, so it never gets here.
                if dry_run or not is_storage_full(error):
                    raise
                logger.warning("cleanup: %s held up, storage full: %s", name, error)
                report.held_up.append(name)
        if dry_run:
            transaction.set_rollback(True)
    logger.info(
        "cleanup (grace period %s): %s%s",
        grace,
        "dry run: " if dry_run else "",
        report.summary(dry_run=dry_run),
    )
    return report


class _no_transaction:
    def __enter__(self):
        return None

    def __exit__(self, *exc_info):
        return False


# 1. Cleanup rules.


def _pattern(pattern: str) -> re.Pattern | None:
    # Gitea anchors the pattern at both ends and ignores case.
    return re.compile(pattern, re.IGNORECASE) if pattern else None


def versions_removed_by(rule: CleanupRule, package: Package, *, now: datetime | None = None):
    """The versions of `package` that `rule` removes, as Gitea decides: the newest
    `keep_count` stay; of the rest, a version stays if the package type protects it,
    if it matches the keep pattern, if it is younger than `remove_days`, if it was
    pulled (or, never pulled, created) within `remove_unpulled_days`, or if a remove
    pattern is set and it does not match; the others go. Patterns match the whole
    version (or `package/version` with `match_full_name`), ignoring case.
    """
    keep, remove = _pattern(rule.keep_pattern), _pattern(rule.remove_pattern)
    now = now or timezone.now()
    older_than = now - timedelta(days=rule.remove_days)
    # Not Gitea's: a mirror keeps what its clients still pull (issue 18).
    unpulled_since = (
        now - timedelta(days=rule.remove_unpulled_days)
        if rule.remove_unpulled_days is not None
        else None
    )
    protected = types.protected_versions(package)
    candidates = (
        package.versions.published()
        .defer("metadata")
        .order_by("-created", "-pk")[rule.keep_count :]
    )
    doomed = []
    for version in candidates:
        name = version.version.lower()
        if name in protected:
            continue
        subject = f"{package.name.lower()}/{name}" if rule.match_full_name else name
        if keep is not None and keep.fullmatch(subject):
            continue
        if version.created > older_than:
            continue
        if unpulled_since is not None and (version.last_pulled or version.created) > unpulled_since:
            continue
        if remove is not None and not remove.fullmatch(subject):
            continue
        doomed.append(version)
    return doomed


def preview_rule(rule: CleanupRule, *, now: datetime | None = None) -> list[PackageVersion]:
    """What `rule` would remove now, whether or not it is enabled: not what something
    that stays needs (an index's platform), which a run skips too.
    """
    found = []
    for package in Package.objects.filter(owner_id=rule.owner_id, type=rule.type).order_by("name"):
        doomed = versions_removed_by(rule, package, now=now)
        blocked = versions.removal_blockers(doomed)
        found += [version for version in doomed if version.pk not in blocked]
    return found


def apply_rules(report: CleanupReport, *, now: datetime, progress: Progress) -> None:
    rules = list(CleanupRule.objects.filter(enabled=True).select_related("owner"))
    packages = [
        (rule, package)
        for rule in rules
        for package in Package.objects.filter(owner_id=rule.owner_id, type=rule.type)
    ]
    for done, (rule, package) in enumerate(packages, 1):
        with transaction.atomic():
            # Under the package's lock: no push moves a tag or adds an index meanwhile.
            locked = Package.objects.select_for_update(no_key=True).filter(pk=package.pk).first()
            if locked is not None:
                gone: set[int] = set()
                for version in versions_removed_by(rule, locked, now=now):
                    if version.pk in gone:
                        continue  # taken along with one removed before it
                    try:
                        removed = versions.remove_version(version, actor=webhooks.CLEANUP_ACTOR)
                    except InUse:
                        # Its type's policy says others need it (a tag that is the
                        # only holder of an index's platform): it stays this run.
                        continue
                    gone |= removed
                    report.versions += len(removed)
        progress("rules", done, len(packages))


# 2. Upload sessions left idle.


def drop_idle_uploads(report: CleanupReport, *, cutoff: datetime, progress: Progress) -> None:
    ids = list(BlobUpload.objects.filter(updated__lt=cutoff).values_list("pk", flat=True))
    for done, upload_id in enumerate(ids, 1):
        dropped = uploads.discard_idle_upload(upload_id, idle_since=cutoff)
        if dropped is not None:
            report.uploads += 1
            report.bytes_freed += dropped
        progress("uploads", done, len(ids))


# 3. Staged files no manifest took up.


def drop_staged_files(report: CleanupReport, *, cutoff: datetime, progress: Progress) -> None:
    package_ids = list(
        PackageFile.objects.filter(version__is_internal=True, created__lt=cutoff)
        .values_list("version__package_id", flat=True)
        .order_by("version__package_id")  # not the model's ordering: it would undo distinct
        .distinct()
    )
    for done, package_id in enumerate(package_ids, 1):
        with transaction.atomic():
            # Under the package's lock, which a push staging a blob here also takes.
            if Package.objects.select_for_update(no_key=True).filter(pk=package_id).exists():
                stale = list(
                    PackageFile.objects.filter(
                        version__package_id=package_id,
                        version__is_internal=True,
                        created__lt=cutoff,
                    )
                )
                versions.remove_files(stale)
                report.staged_files += len(stale)
                for version in PackageVersion.objects.filter(
                    package_id=package_id, is_internal=True, files__isnull=True
                ):
                    versions.remove_version(version)
        progress("staged files", done, len(package_ids))


# 4. Packages without versions, and properties of rows that are gone.


def drop_empty_packages(report: CleanupReport, *, progress: Progress) -> None:
    ids = list(
        Package.objects.filter(~Exists(PackageVersion.objects.filter(package=OuterRef("pk"))))
        .values_list("pk", flat=True)
        .order_by("pk")
    )
    for done, package_id in enumerate(ids, 1):
        with transaction.atomic():
            # FOR UPDATE conflicts with the lock pushes take: a package being filled is skipped.
            package = (
                Package.objects.select_for_update(skip_locked=True).filter(pk=package_id).first()
            )
            if package is not None and not package.versions.exists():
                versions.remove_package(package)
                report.packages += 1
        progress("packages", done, len(ids))
    _drop_orphaned_properties()


def _drop_orphaned_properties() -> None:
    for ref_type, model in (
        (RefType.PACKAGE, Package),
        (RefType.VERSION, PackageVersion),
        (RefType.FILE, PackageFile),
    ):
        PackageProperty.objects.filter(ref_type=ref_type).exclude(
            Exists(model.objects.filter(pk=OuterRef("ref_id")))
        ).delete()


# 5. Blobs nothing refers to.


def collect_blobs(report: CleanupReport, *, cutoff: datetime, progress: Progress) -> None:
    """Drop unreferenced blobs created before `cutoff`; their objects go after commit."""
    store = ContentStore.default()
    # Left by a run that stopped between dropping rows and deleting their objects.
    leftover = list(BlobDeletion.objects.values_list("sha256", flat=True))
    transaction.on_commit(lambda: purge_objects(leftover, store=store))
    ids = list(
        PackageBlob.objects.filter(
            ~Exists(PackageFile.objects.filter(blob=OuterRef("pk"))), created__lt=cutoff
        )
        .values_list("pk", flat=True)
        .order_by("pk")
    )
    for done, batch in _batches(ids, BLOB_BATCH):
        with transaction.atomic():
            dropped = _drop_blobs(batch, cutoff)
            hexes = [blob.sha256 for blob in dropped]
            transaction.on_commit(lambda hexes=hexes: purge_objects(hexes, store=store))
        freed = sum(blob.size for blob in dropped)
        if dropped:
            logger.info("cleanup: dropped %d unreferenced blob(s), %d bytes", len(dropped), freed)
        report.blobs += len(dropped)
        report.bytes_freed += freed
        progress("blobs", done, len(ids))


def _drop_blobs(pks: list[int], cutoff: datetime) -> list[PackageBlob]:
    # Rows a writer has locked (it is about to refer to them) are skipped, not waited for.
    locked = list(
        PackageBlob.objects.select_for_update(skip_locked=True)
        .filter(pk__in=pks, created__lt=cutoff)
        .order_by("pk")
    )
    used = set(
        PackageFile.objects.filter(blob__in=locked).order_by().values_list("blob_id", flat=True)
    )
    doomed = [blob for blob in locked if blob.pk not in used]
    BlobDeletion.objects.bulk_create(
        [BlobDeletion(sha256=blob.sha256) for blob in doomed], ignore_conflicts=True
    )
    PackageBlob.objects.filter(pk__in=[blob.pk for blob in doomed]).delete()
    return doomed


def purge_objects(hexes: Iterable[str], *, store: ContentStore) -> None:
    """Delete the objects of dropped blobs, under their BlobDeletions' locks."""
    for _, batch in _batches(sorted(hexes), BLOB_BATCH):
        with transaction.atomic():
            pending = list(
                BlobDeletion.objects.select_for_update().filter(sha256__in=batch).order_by("sha256")
            )
            # An upload of the same bytes since deleted its BlobDeletion (so it is not
            # here) and made a new row; a row here means someone else made one.
            alive = set(
                PackageBlob.objects.filter(
                    sha256__in=[deletion.sha256 for deletion in pending]
                ).values_list("sha256", flat=True)
            )
            for deletion in pending:
                if deletion.sha256 not in alive:
                    key = blob_key(deletion.sha256)
                    store.delete(key)
                    logger.info("cleanup: deleted %s", key)
            BlobDeletion.objects.filter(pk__in=[deletion.pk for deletion in pending]).delete()


def _batches(items: list, size: int) -> Iterator[tuple[int, list]]:
    for start in range(0, len(items), size):
        batch = items[start : start + size]
        yield start + len(batch), batch
