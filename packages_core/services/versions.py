"""Packages, versions and files: creating and removing them."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from packages_core import changes, types
from packages_core.exceptions import InUse, InvalidInput, NameTaken, NotFound
from packages_core.models import Owner, Package, PackageBlob, PackageFile, PackageVersion
from packages_core.services import figures, properties, webhooks
from packages_core.services.blobs import lock_blobs
from packages_core.services.properties import RefType
from packages_core.services.rows import get_or_create_unique

# A package that cleanup drops between our finding and our locking it is made again;
# more than this many times in a row means something else is wrong.
LOCK_ATTEMPTS = 5


def get_or_create_package(owner: Owner, type: str, name: str) -> Package:
    """The owner's package of that type and name (case-insensitive), made if missing."""
    if not name:
        raise InvalidInput("A package needs a name.")
    package, _ = get_or_create_unique(
        lambda: Package.objects.filter(owner=owner, type=type).named(name).first(),
        lambda: Package.objects.create(owner=owner, type=type, name=name),
    )
    return package


def lock_package(owner: Owner, type: str, name: str) -> Package:
    """The owner's package, made if missing, locked until the transaction ends.

    Whoever adds or removes a package's versions holds this lock (FOR NO KEY UPDATE:
    it does not stop rows referring to the package), so cleanup, which drops a
    package only with it locked and empty, never drops one a push is filling.
    Writers that also lock blobs lock those first. Taking it announces a change
    (packages_core/changes.py).
    """
    for _ in range(LOCK_ATTEMPTS):
        package = get_or_create_package(owner, type, name)
        locked = Package.objects.select_for_update(no_key=True).filter(pk=package.pk).first()
        if locked is not None:
            changes.changed()
            return locked
    raise NotFound(f"Package {owner.name}/{name} keeps disappearing.")


def get_or_create_version(
    package: Package,
    version: str,
    *,
    creator=None,
    is_internal: bool = False,
    metadata: dict | None = None,
) -> tuple[PackageVersion, bool]:
    """The package's version by name (case-insensitive), made if missing."""
    if not version:
        raise InvalidInput("A version needs a name.")
    row, created = get_or_create_unique(
        lambda: package.versions.versioned(version).first(),
        lambda: PackageVersion.objects.create(
            package=package,
            version=version,
            creator=creator,
            is_internal=is_internal,
            metadata=metadata or {},
        ),
    )
    if created and not is_internal:
        mark_pushed(package, row.updated)
        figures.version_added(package.pk)
    return row, created


def mark_pushed(package: Package, when) -> None:
    """Record that a published version of the package was added or changed at `when`."""
    Package.objects.filter(pk=package.pk).update(last_pushed=when)
    package.last_pushed = when


def create_version(package: Package, version: str, **fields) -> PackageVersion:
    """A new version; NameTaken if the package already has one by that name."""
    row, created = get_or_create_version(package, version, **fields)
    if not created:
        raise NameTaken(f"{package} already has a version {row.version!r}.")
    return row


def add_file(
    version: PackageVersion,
    blob: PackageBlob,
    name: str,
    *,
    composite_key: str = "",
    is_lead: bool = False,
    properties_: dict[str, str] | None = None,
    replace: bool = False,
) -> PackageFile:
    """Attach `blob` to `version` as file `name`.

    With `replace`, a file of the same name and key is swapped out (with its
    properties); otherwise that is NameTaken. NotFound if garbage collection took
    the blob since the caller found it.
    """
    with transaction.atomic():
        if not lock_blobs([blob.pk]):
            raise NotFound(f"Blob {blob} is gone.")
        existing = version.files.filter(composite_key=composite_key).named(name).first()
        if existing is not None:
            if not replace:
                raise NameTaken(f"{version} already has a file {name!r}.")
            remove_files([existing])
        file = PackageFile.objects.create(
            version=version, blob=blob, name=name, composite_key=composite_key, is_lead=is_lead
        )
        if not version.is_internal:
            figures.files_added(version.package_id, [file])
        if properties_:
            properties.add_properties(RefType.FILE, file.pk, properties_)
    return file


def remove_files(files: list[PackageFile]) -> None:
    """Delete files and their properties; their blobs stay for garbage collection."""
    ids = [f.pk for f in files]
    with transaction.atomic():
        figures.lock(f.package_id for f in files)
        published = _published_blobs(PackageFile.objects.filter(pk__in=ids))
        properties.delete_properties(RefType.FILE, ids)
        PackageFile.objects.filter(pk__in=ids).delete()
        for package_id, blob_ids in published.items():
            figures.files_removed(package_id, blob_ids)


def _published_blobs(files) -> dict[int, set[int]]:
    """The blobs these files of published versions use, by package."""
    found: dict[int, set[int]] = {}
    rows = files.filter(version__is_internal=False).values_list("package_id", "blob_id")
    for package_id, blob_id in rows:
        found.setdefault(package_id, set()).add(blob_id)
    return found


def removal_blockers(versions_: list[PackageVersion]) -> dict[int, list[str]]:
    """What stops each of these versions going, if they went together: by version id,
    what still needs it (its type's `RemovalPolicy`); versions free to go are left out.
    """
    going = {version.pk for version in versions_}
    blockers = {}
    for version in versions_:
        if version.is_internal:
            continue
        needed = types.get(version.package.type).removal_policy.needed_by(version, going)
        if needed:
            blockers[version.pk] = needed
    return blockers


def remove_version(version: PackageVersion, **kwargs) -> set[int]:
    """Delete a version with its files and all their properties; see `remove_versions`."""
    return remove_versions([version], **kwargs)


def remove_versions(
    versions_: list[PackageVersion],
    *,
    actor=None,
    origin: webhooks.Origin | None = None,
    announce: bool = True,
) -> set[int]:
    """Delete versions together, with their files and all their properties, and the
    versions that only they needed (a container index's untagged platforms).

    InUse, and nothing removed, when something that stays needs one of them (an index
    that lists a platform manifest): every face that removes versions comes through
    here, so none can break what others pull. Blobs are left in place: other versions
    may share them, and garbage collection removes the ones nothing refers to any more.
    The ids of the versions that went, those taken along included.

    Each version that goes, those taken along included, is a `delete` webhook event
    (its type's `RemovalEvents`), written in this transaction: `actor` (a user, a name
    such as `webhooks.CLEANUP_ACTOR`, or None) asked, in the request `origin` (None: no
    request). Without `announce` the caller writes the events itself (a container tag
    whose manifest moved out of it before it went).
    """
    if not versions_:
        return set()
    with transaction.atomic():
        # Under the packages' lock: no push adds an index listing one of them meanwhile.
        figures.lock(version.package_id for version in versions_)
        blockers = removal_blockers(versions_)
        if blockers:
            needed = sorted({name for names in blockers.values() for name in names})
            doomed = ", ".join(v.version for v in versions_ if v.pk in blockers)
            raise InUse(f"{doomed} cannot be deleted: {', '.join(needed)} needs it.", needed)
        going = {version.pk for version in versions_}
        freed: dict[int, PackageVersion] = {}
        for version in versions_:
            if version.is_internal:
                continue
            policy = types.get(version.package.type).removal_policy
            for follower in policy.freed_by(version, going):
                if follower.pk not in going:
                    freed.setdefault(follower.pk, follower)
        send_events = prepare_events(versions_, actor=actor, origin=origin) if announce else None
        for version in versions_:
            _delete_version(version)
        if send_events is not None:
            send_events()
        # They may free others in turn (an index listed by an index).
        return going | remove_versions(list(freed.values()), actor=actor, origin=origin)


def prepare_events(
    versions_: list[PackageVersion], *, actor=None, origin: webhooks.Origin | None = None
) -> Callable[[], None]:
    """The delete events of these versions, read now (by their types' `RemovalEvents`)
    while their rows are there; the callable returned writes them once they are gone.
    Nothing is read of an owner no webhook could hear of, nor of internal versions.
    """
    by_type: dict[str, list[PackageVersion]] = {}
    listening: dict[int, bool] = {}
    for version in versions_:
        if version.is_internal:
            continue
        owner_id = version.package.owner_id
        if owner_id not in listening:
            listening[owner_id] = webhooks.has_webhooks(owner_id)
        if listening[owner_id]:
            by_type.setdefault(version.package.type, []).append(version)
    origin = origin or webhooks.Origin()
    senders = [
        types.get(name).removal_events.prepare(group, actor=actor, origin=origin)
        for name, group in by_type.items()
    ]

    def send() -> None:
        for sender in senders:
            sender()

    return send


def _delete_version(version: PackageVersion) -> None:
    """Delete one version with its files and properties, asking no one."""
    file_ids = list(version.files.values_list("pk", flat=True))
    published = _published_blobs(version.files.all())
    properties.delete_properties(RefType.FILE, file_ids)
    properties.delete_properties(RefType.VERSION, [version.pk])
    package_id, internal = version.package_id, version.is_internal
    version.delete()
    if not internal:
        figures.version_removed(package_id)
    for owning_package, blob_ids in published.items():
        figures.files_removed(owning_package, blob_ids)


def remove_package(package: Package, *, actor=None, origin: webhooks.Origin | None = None) -> None:
    """Delete a package with every version, file and property.

    The whole package goes, so what its versions need of each other does not matter.
    Each published version is a `delete` webhook event, as in `remove_versions`.
    """
    with transaction.atomic():
        figures.lock([package.pk])
        doomed = list(package.versions.all())
        send_events = prepare_events(doomed, actor=actor, origin=origin)
        for version in doomed:
            _delete_version(version)
        send_events()
        properties.delete_properties(RefType.PACKAGE, [package.pk])
        package.delete()
