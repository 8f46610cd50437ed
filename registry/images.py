"""Container images on the package domain: blobs, manifests, tags, catalog and referrers.

An image is a `Package` of type "container". Each tag is a version holding the
manifest file (the lead file, with a `Manifest` row) and one file per config or
layer blob, named by digest. A manifest pushed by digest, or left behind when its
tag moved, is a version named by that digest. Uploaded blobs wait in an internal
staging version until a manifest takes them up.

What goes wrong is said with the OCI layer's errors (`registry.oci.errors`); the /v2
views answer them in the spec's terms, the pages in their own.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Value
from django.db.models.functions import Concat, Lower

from packages_core import access, lookups
from packages_core.adapter import get_adapter
from packages_core.content_store import ContentStore
from packages_core.exceptions import InUse
from packages_core.models import Owner, Package, PackageBlob, PackageFile, PackageVersion
from packages_core.models.blobs import blob_key
from packages_core.models.owners import is_owner_name
from packages_core.prepared import PreparedQuery
from packages_core.services import figures, quotas, versions, webhooks
from packages_core.services.blobs import lock_blobs, store_blob
from packages_core.services.rows import get_or_create_unique
from registry import events
from registry.models import IndexChild, Manifest, MirroredBlob
from registry.oci.digests import Digest, looks_like_digest, parse_digest
from registry.oci.errors import (
    BlobNotFound,
    DigestMismatch,
    InvalidDigest,
    InvalidManifest,
    InvalidName,
    InvalidReference,
    ManifestChildNotFound,
    ManifestNotFound,
    ManifestReferenced,
    RepositoryNotFound,
    SizeMismatch,
    quoted,
)
from registry.oci.manifests import EMPTY_CONTENT, EMPTY_DIGEST, parse_manifest
from registry.oci.metadata import image_metadata, index_metadata
from registry.oci.names import is_valid_image_name, is_valid_tag

CONTAINER = "container"
# Neither a valid tag nor a digest, so it can never clash with a pushed reference.
STAGING_VERSION = "~staging"
MANIFEST_FILE_NAME = "manifest.json"


def is_tag(version_name: str) -> bool:
    """Whether a version is named by a tag: an untagged manifest is a version named by
    its digest, and no tag holds a ':'.
    """
    return ":" not in version_name


def latest_candidates() -> Q:
    """The versions that may be called an image's latest: tags of images and indexes.

    Never an untagged manifest, nor an artifact (its metadata records an
    `artifact_type`), nor a referrer (a manifest with a `subject`: a signature, an
    SBOM), even when pushed under a tag after the image it refers to.
    """
    referrer = Manifest.objects.filter(file__version=OuterRef("pk"), file__is_lead=True).exclude(
        subject_digest=""
    )
    return ~Q(version__contains=":") & ~Q(metadata__has_key="artifact_type") & ~Exists(referrer)


# Configs are small JSON documents; a bigger one is not read for metadata.
MAX_CONFIG_SIZE = 4 * 1024 * 1024


# Repository names: an owner (the package domain's rules) and an image (the OCI layer's)


def check_owner_name(owner: str) -> str:
    """The owner part of a repository name, or InvalidName: checked before any query, so
    nothing that no owner could be called (a NUL byte, say) reaches the database.
    """
    if not is_owner_name(owner):
        raise InvalidName(
            f"invalid repository name: {quoted(owner)} cannot be a user or organisation",
            detail={"name": owner},
        )
    return owner


def is_valid_repository(name: str) -> bool:
    """Whether `name` ("owner/image", the owner in any case) could name a repository."""
    owner, _, image = name.partition("/")
    return is_owner_name(owner) and is_valid_image_name(image)


def find_package(owner: Owner, image: str) -> Package | None:
    return Package.objects.filter(owner=owner, type=CONTAINER).named(image).first()


def require_package(owner: Owner, image: str) -> Package:
    package = find_package(owner, image)
    if package is None:
        raise RepositoryNotFound(f"repository {owner.name}/{image} not known to registry")
    return package


def _blob_filter(digest: Digest, prefix: str = "") -> Q:
    """Match blobs by the digest's algorithm: we record both sha256 and sha512."""
    return Q(**{f"{prefix}{digest.algorithm}": digest.hex})


# Blobs


_BLOB_FIELDS = [field.attname for field in PackageBlob._meta.concrete_fields]


def _blob_in_image(column: str):
    """The blob whose `column` is a value, if a file of the image (by owner id and name)
    uses or stages it: one query, stopping at the first such file.
    """

    def build(owner_id, image, value):
        packages = Package.objects.alias(lower_name=Lower("name")).filter(
            owner_id=owner_id, type=CONTAINER, lower_name=image
        )
        in_image = PackageFile.objects.filter(
            blob=OuterRef("pk"), package__in=packages.values("pk")
        )
        return (
            PackageBlob.objects.filter(**{column: value})
            .filter(Exists(in_image))
            .order_by()
            .values_list(*_BLOB_FIELDS)[:1]
        )

    return PreparedQuery(build, int, str, str)


_BLOB_BY_ALGORITHM = {"sha256": _blob_in_image("sha256"), "sha512": _blob_in_image("sha512")}


def find_blob(owner: Owner, image: str, digest: Digest) -> PackageBlob:
    """The blob, if this image references or staged it; BlobNotFound otherwise."""
    row = _BLOB_BY_ALGORITHM[digest.algorithm].first(owner.pk, image.lower(), digest.hex)
    blob = PackageBlob.from_db("default", _BLOB_FIELDS, row) if row is not None else None
    if blob is None:
        raise BlobNotFound(
            f"blob {digest} unknown to {owner.name}/{image}", detail={"digest": str(digest)}
        )
    return blob


def stage_blob(owner: Owner, image: str, blob: PackageBlob, *, creator=None) -> None:
    """Make an uploaded (or mounted) blob visible in the image until a manifest takes it up.

    Passed to the blob services as the claim of a new upload, so the blob is recorded
    and staged in one transaction. BlobNotFound if garbage collection dropped the blob
    since the caller found it (a mount source's blob, say).
    """
    with transaction.atomic():
        if not lock_blobs([blob.pk]):
            raise BlobNotFound(f"blob sha256:{blob.sha256} is gone")
        package = versions.lock_package(owner, CONTAINER, image)
        staging, _ = versions.get_or_create_version(
            package, STAGING_VERSION, creator=creator, is_internal=True
        )
        name = f"sha256:{blob.sha256}"
        get_or_create_unique(
            lambda: staging.files.filter(name=name).first(),
            lambda: PackageFile.objects.create(version=staging, blob=blob, name=name),
        )


def staging_claim(owner: Owner, image: str, *, creator=None):
    """The claim that stages a new blob in this image as it is recorded."""
    return lambda blob: stage_blob(owner, image, blob, creator=creator)


def readable_blob_elsewhere(user, token, digest: Digest, source: str) -> PackageBlob | None:
    """For a cross-repository mount: the blob in `source` ("owner/image"), if the caller
    (`user`, narrowed by the access `token` it signed in with) may read it.
    """
    owner_name, _, image = source.partition("/")
    owner = Owner.objects.named(owner_name).first() if image else None
    if owner is None or not access.allowed(user, token, owner, access.READ):
        return None
    try:
        return find_blob(owner, image, digest)
    except BlobNotFound:
        return None


def delete_blob(owner: Owner, image: str, digest: Digest) -> None:
    """Forget a staged blob in this image.

    Manifests that reference the blob keep it: deleting it from under them would
    break their pulls. The bytes go when garbage collection finds nothing using them.
    """
    blob = find_blob(owner, image, digest)
    staged = PackageFile.objects.filter(
        version__package=require_package(owner, image),
        version__version=STAGING_VERSION,
        blob=blob,
    )
    versions.remove_files(list(staged))


# Manifests


@dataclass(frozen=True)
class FoundManifest:
    """What a manifest HEAD or GET needs: the answer's headers, the bytes' key, the version."""

    digest: str  # canonical: sha256
    media_type: str
    size: int
    sha256: str  # of the manifest's blob: its storage key
    version_id: int

    @property
    def storage_key(self) -> str:
        return blob_key(self.sha256)


_FOUND_FIELDS = [
    "digest",
    "media_type",
    "file__blob__size",
    "file__blob__sha256",
    "file__version_id",
]


def _manifests_in(owner_name: str, image: str):
    """Manifests of the image (names lowercased by the caller), with their owner's fields."""
    return Manifest.objects.alias(
        owner_name=Lower("package__owner__name"), image=Lower("package__name")
    ).filter(owner_name=owner_name, package__type=CONTAINER, image=image)


def _found(queryset):
    columns = [f"package__owner__{name}" for name in lookups.OWNER_FIELDS] + _FOUND_FIELDS
    return queryset.order_by().values_list(*columns)[:1]


def _tagged_manifest(owner: str, image: str, tag: str):
    """The manifest of a tag, from the version's side: owner, image and tag each by its
    unique index, then the version's lead file. (From the manifests' side the database
    would walk every manifest of the image to find the one whose version has the tag.)
    """
    columns = [f"package__owner__{name}" for name in lookups.OWNER_FIELDS] + [
        "files__manifest__digest",
        "files__manifest__media_type",
        "files__blob__size",
        "files__blob__sha256",
        "pk",
    ]
    return (
        PackageVersion.objects.alias(
            owner_name=Lower("package__owner__name"),
            image=Lower("package__name"),
            tag=Lower("version"),
        )
        .filter(
            owner_name=owner,
            package__type=CONTAINER,
            image=image,
            tag=tag,
            is_internal=False,
            files__is_lead=True,
            files__manifest__isnull=False,
        )
        .order_by()
        .values_list(*columns)[:1]
    )


# One query per kind of reference, compiled once (packages_core/prepared.py): a manifest
# HEAD is the request a registry answers most.
_BY_TAG = PreparedQuery(_tagged_manifest, str, str, str)
_BY_DIGEST = PreparedQuery(
    lambda owner, image, digest: _found(_manifests_in(owner, image).filter(digest=digest)),
    str,
    str,
    str,
)
_BY_SHA512 = PreparedQuery(
    lambda owner, image, hex_: _found(_manifests_in(owner, image).filter(file__blob__sha512=hex_)),
    str,
    str,
    str,
)


def resolve_manifest(owner_name: str, image: str, reference: str):
    """(the owner, the manifest a tag or digest names in the image): one query when the
    manifest is there, two when it is not (then the owner alone, None if unknown).
    """
    return resolved(owner_name, manifest_row(owner_name, image, reference))


def manifest_row(owner_name: str, image: str, reference: str) -> tuple | None:
    """The values of the owner and the manifest a tag or digest names, in one query;
    None when there is none.
    """
    owner_key, image_key = owner_name.lower(), image.lower()
    if looks_like_digest(reference):
        try:
            digest = parse_digest(reference)
        except InvalidDigest:
            return None
        if digest.algorithm == "sha256":
            return _BY_DIGEST.first(owner_key, image_key, str(digest))
        return _BY_SHA512.first(owner_key, image_key, digest.hex)
    if is_valid_tag(reference):
        return _BY_TAG.first(owner_key, image_key, reference.lower())
    return None


def resolved(owner_name: str, row: tuple | None) -> tuple[Owner | None, FoundManifest | None]:
    """The owner and the manifest from a `manifest_row`; without one, the owner alone
    (one more query), None if unknown.
    """
    if row is None:
        return lookups.owner_named(owner_name.lower()), None
    owner_values, found = row[: len(lookups.OWNER_FIELDS)], row[len(lookups.OWNER_FIELDS) :]
    return lookups.owner_from_row(owner_values), FoundManifest(*found)


def manifest_unknown(owner: Owner, image: str, reference: str) -> ManifestNotFound:
    return ManifestNotFound(
        f"manifest {reference} unknown to {owner.name}/{image}", detail={"reference": reference}
    )


def find_manifest(owner: Owner, image: str, reference: str) -> FoundManifest:
    """The manifest a tag or digest names in this image; ManifestNotFound otherwise."""
    found_owner, found = resolve_manifest(owner.name, image, reference)
    if found is None or found_owner is None or found_owner.pk != owner.pk:
        raise manifest_unknown(owner, image, reference)
    return found


@dataclass(frozen=True)
class PushedManifest:
    digest: str
    subject: str


def put_manifest(
    owner: Owner,
    image: str,
    reference: str,
    body: bytes,
    content_type: str | None,
    *,
    creator=None,
    store: ContentStore | None = None,
    origin: webhooks.Origin | None = None,
    mirrored: bool = False,
) -> PushedManifest:
    """Validate a manifest and file it under its tag (or digest) in one transaction.

    Nothing is created for a manifest that is refused. Manifests are stored and found
    by their sha256; one pushed by a sha512 digest is answered with that digest.
    A `mirrored` manifest came from a mirror's upstream: the blobs and index children
    it names may be missing, to be fetched when pulled (registry/mirrors/); the blobs
    are recorded as MirroredBlob rows until then.
    """
    store = store or ContentStore.default()
    canonical = Digest.of(body)
    if looks_like_digest(reference):
        wanted = parse_digest(reference)
        answered = Digest.of(body, wanted.algorithm)
        if answered != wanted:
            raise DigestMismatch(
                f"manifest digest is {answered}, not {wanted}", detail={"digest": reference}
            )
        tag = None
    elif is_valid_tag(reference):
        answered, tag = canonical, reference
    else:
        raise InvalidReference(f"tag {reference!r} is invalid", detail={"tag": reference})
    parsed = parse_manifest(body, content_type)
    existing = find_package(owner, image)
    files, missing = _referenced_files(
        owner, image, existing, parsed, store=store, mirrored=mirrored
    )
    if existing is None or not existing.versions.versioned(tag or str(canonical)).exists():
        quotas.check_new_version(owner, user=creator)
    metadata = {**_metadata(parsed, files, store), "is_tagged": tag is not None}
    for _ in range(versions.LOCK_ATTEMPTS):
        # Manifests are small: hashed both ways, an index or referrer may name either.
        manifest_blob = store_blob(io.BytesIO(body), store=store, sha512=True).blob
        pushed = _file_manifest(
            owner,
            image,
            tag or str(canonical),
            parsed,
            manifest_blob,
            files,
            metadata,
            creator,
            origin,
            missing=missing,
            mirrored=mirrored,
        )
        if pushed is not None:
            return PushedManifest(str(answered), pushed)
    raise InvalidManifest(f"manifest {canonical} could not be stored; try again")


def _file_manifest(
    owner,
    image,
    reference,
    parsed,
    manifest_blob,
    files,
    metadata,
    creator,
    origin,
    *,
    missing=(),
    mirrored=False,
) -> str | None:
    """File the manifest under `reference`; its subject digest, or None if garbage
    collection took the manifest's own blob since it was stored (store it again).
    """
    canonical = f"sha256:{manifest_blob.sha256}"
    with transaction.atomic():
        # Blobs first, then the image: the order every writer locks in. Held, the
        # blobs cannot be collected before the files referring to them commit.
        held = lock_blobs([manifest_blob.pk, *(blob.pk for blob in files.values())])
        if manifest_blob.pk not in held:
            return None
        for name, blob in files.items():
            if blob.pk not in held:
                raise BlobNotFound(
                    f"blob {name} is not in {owner.name}/{image}", detail={"digest": name}
                )
        # One manifest write per image at a time: tags move without lost updates.
        package = versions.lock_package(owner, CONTAINER, image)
        children = (
            _check_children(owner, image, package, parsed, mirrored=mirrored)
            if parsed.is_index
            else set()
        )
        stored_type = (
            Manifest.objects.filter(package=package, digest=canonical)
            .values_list("media_type", flat=True)
            .first()
        )
        version, created = versions.get_or_create_version(
            package, reference, creator=creator, metadata=metadata
        )
        current = Manifest.objects.filter(file__version=version).first()
        if current is not None and current.digest == canonical:
            return current.subject_digest
        if current is not None:
            _retire(version, current)
        lead = PackageFile.objects.create(
            version=version, blob=manifest_blob, name=MANIFEST_FILE_NAME, is_lead=True
        )
        subject = parsed.subject.digest if parsed.subject else ""
        row = Manifest.objects.create(
            file=lead,
            package=package,
            digest=canonical,
            media_type=stored_type or parsed.media_type,
            artifact_type=parsed.effective_artifact_type or "",
            subject_digest=subject,
            annotations=parsed.annotations or {},
        )
        IndexChild.objects.bulk_create(
            IndexChild(index=row, package=package, digest=digest) for digest in sorted(children)
        )
        layers = PackageFile.objects.bulk_create(
            PackageFile(version=version, package=package, blob=blob, name=name)
            for name, blob in files.items()
        )
        MirroredBlob.objects.bulk_create(
            MirroredBlob(
                manifest=row, package=package, digest=descriptor.digest, size=descriptor.size
            )
            for descriptor in missing
        )
        figures.files_added(package.pk, [lead, *layers])
        if not created:
            version.metadata = metadata
            version.creator = creator or version.creator
            version.save(update_fields=["metadata", "creator", "updated"])
            versions.mark_pushed(package, version.updated)
        # In this transaction: the event is sent if, and only if, the push commits.
        # A mirror's fetch is no push: nobody pushed, and a site-wide webhook would
        # hear of every image anyone pulled through a mirror.
        if not mirrored:
            events.pushed(
                events.ManifestEvent(
                    owner=owner,
                    image=package.name,
                    digest=canonical,
                    media_type=row.media_type,
                    size=manifest_blob.size,
                    tag=reference if is_tag(reference) else None,
                    actor=webhooks.actor_name(creator),
                ),
                origin,
            )
    return subject


def _hexes(digests) -> set[str]:
    return {digest.partition(":")[2] for digest in digests}


def _by_hex(blobs) -> dict[str, PackageBlob]:
    """Blobs keyed by both their sha256 and sha512 hex, as digests may use either."""
    found = {}
    for blob in blobs:
        found[blob.sha256] = blob
        if blob.sha512:
            found[blob.sha512] = blob
    return found


def _referenced_files(owner, image, package, parsed, *, store, mirrored=False):
    """The blobs a manifest needs that the image has, by file name, and (for a mirrored
    manifest) the descriptors of those it has not; the errors the spec names if a
    pushed manifest's blob is missing.
    """
    if parsed.is_index:
        return {}, []  # its children are checked under the image's lock
    needed = list(parsed.referenced_blobs)
    present = _blobs_in_image(package, {d.digest for d in needed}) if package is not None else {}
    files, missing = {}, []
    for descriptor in needed:
        blob = present.get(descriptor.digest.partition(":")[2])
        if blob is None and descriptor.digest == EMPTY_DIGEST:
            # Clients may skip uploading the well-known empty config; we know its bytes.
            blob = store_blob(io.BytesIO(EMPTY_CONTENT), store=store).blob
        if blob is None and mirrored:
            if descriptor.digest not in {d.digest for d in missing}:
                missing.append(descriptor)
            continue
        if blob is None:
            raise BlobNotFound(
                f"blob {descriptor.digest} is not in {owner.name}/{image}",
                detail={"digest": descriptor.digest},
            )
        if blob.size != descriptor.size:
            raise SizeMismatch(
                f"blob {descriptor.digest} has {blob.size} bytes, not {descriptor.size}",
                detail={"digest": descriptor.digest, "size": descriptor.size},
            )
        files[descriptor.digest] = blob
    return files, missing


def _blobs_in_image(package: Package, digests: set[str]) -> dict[str, PackageBlob]:
    """The blobs with these digests the image holds, by their sha256 and sha512 hex.

    Index lookups whatever the image's size: first the upload staging (where a push's
    blobs are, named by digest), then for what is not staged, whether a version of the
    image uses the blob (an EXISTS that stops at the first file).
    """
    found = {}
    staging = package.versions.versioned(STAGING_VERSION).values_list("pk", flat=True).first()
    if staging is not None:
        staged = (
            PackageFile.objects.alias(lower_name=Lower("name"))
            .filter(version_id=staging, lower_name__in=[d.lower() for d in digests])
            .select_related("blob")
        )
        found.update(_by_hex(file.blob for file in staged))
    missing = {d for d in digests if d.partition(":")[2] not in found}
    if missing:
        hexes = _hexes(missing)
        used = PackageFile.objects.filter(blob=OuterRef("pk"), package=package)
        found.update(
            _by_hex(
                PackageBlob.objects.filter(Q(sha256__in=hexes) | Q(sha512__in=hexes)).filter(
                    Exists(used)
                )
            )
        )
    return found


def _check_children(
    owner: Owner, image: str, package: Package, parsed, *, mirrored: bool = False
) -> set[str]:
    """The sha256 digests of the manifests an index lists (each may name one by sha512);
    ManifestChildNotFound unless every one is in the image, or the index is mirrored
    (its children are fetched when a platform is pulled).
    """
    children = [d.digest for d in parsed.manifests]
    sha512 = _hexes(c for c in children if c.startswith("sha512:"))
    found = {
        digest: digest
        for digest in Manifest.objects.filter(package=package, digest__in=children).values_list(
            "digest", flat=True
        )
    }
    if sha512:
        found.update(
            (f"sha512:{hex512}", f"sha256:{hex256}")
            for hex512, hex256 in Manifest.objects.filter(
                package=package, file__blob__sha512__in=sha512
            ).values_list("file__blob__sha512", "file__blob__sha256")
        )
    for child in children:
        if child not in found and mirrored:
            found[child] = child
        elif child not in found:
            raise ManifestChildNotFound(
                f"manifest {child} is not in {owner.name}/{image}", detail={"digest": child}
            )
    return {found[child] for child in children}


def _metadata(parsed, files: dict[str, PackageBlob], store: ContentStore) -> dict:
    if parsed.is_index:
        return index_metadata(parsed)
    config = None
    blob = files.get(parsed.config.digest) if parsed.config else None
    if blob is not None and blob.size <= MAX_CONFIG_SIZE:
        try:
            with store.open(blob.storage_key) as handle:
                config = handle.read()
        except FileNotFoundError:
            # Collected since it was found: its staging was dropped meanwhile.
            raise BlobNotFound(
                f"blob {parsed.config.digest} is gone", detail={"digest": parsed.config.digest}
            ) from None
    return image_metadata(parsed, config)


def _retire(version: PackageVersion, current: Manifest) -> None:
    """A tag moves on: its old manifest stays pullable by digest, as an untagged version."""
    untagged = version.package.versions.versioned(current.digest).first()
    old_files = list(version.files.all())
    if untagged is not None:
        versions.remove_files(old_files)
        return
    metadata = {**version.metadata, "is_tagged": False}
    untagged = PackageVersion.objects.create(
        package=version.package,
        version=current.digest,
        creator=version.creator,
        metadata=metadata,
    )
    figures.version_added(version.package_id)
    PackageFile.objects.filter(pk__in=[f.pk for f in old_files]).update(version=untagged)


def delete_manifest(
    owner: Owner,
    image: str,
    reference: str,
    *,
    actor=None,
    origin: webhooks.Origin | None = None,
) -> None:
    """Delete a tag, or by digest every version holding that manifest (every tag on it).

    A manifest an index in the image lists is not deleted from under the index
    (ManifestReferenced): by digest that is refused. A tag is only a name, so deleting
    a tag whose manifest the index needs keeps the manifest, untagged. Deleting an index
    deletes the untagged manifests only it listed.
    """
    package = find_package(owner, image)
    unknown = ManifestNotFound(
        f"manifest {reference} unknown to {owner.name}/{image}", detail={"reference": reference}
    )
    if package is None:
        raise unknown
    if looks_like_digest(reference):
        try:
            digest = parse_digest(reference)
        except InvalidDigest:
            raise unknown from None
        doomed = (
            PackageVersion.objects.published()
            .filter(
                Q(files__manifest__isnull=False) & _blob_filter(digest, "files__blob__"),
                package=package,
            )
            .distinct()
        )
    elif is_valid_tag(reference):
        doomed = package.versions.published().versioned(reference)
    else:
        raise unknown
    doomed = list(doomed)
    if not doomed:
        raise unknown
    with transaction.atomic():
        # Under the image's lock: no push adds an index listing the manifest meanwhile.
        figures.lock([package.pk])
        if not looks_like_digest(reference) and versions.removal_blockers(doomed):
            _untag(doomed[0], actor=actor, origin=origin)
            return
        try:
            versions.remove_versions(doomed, actor=actor, origin=origin)
        except InUse as error:
            raise ManifestReferenced(
                f"manifest {reference} is listed by {', '.join(error.needed_by)} in "
                f"{owner.name}/{image}; delete the index first",
                detail={"reference": reference, "referenced_by": error.needed_by},
            ) from None


def delete_version(
    version: PackageVersion, *, actor=None, origin: webhooks.Origin | None = None
) -> None:
    """Delete one version of an image, as the pages do: a tag as `delete_manifest` deletes
    a tag (its manifest kept untagged while an index lists it); an untagged manifest
    unless an index lists it (InUse), other tags on its digest untouched.
    """
    with transaction.atomic():
        figures.lock([version.package_id])
        if is_tag(version.version) and versions.removal_blockers([version]):
            _untag(version, actor=actor, origin=origin)
        else:
            versions.remove_version(version, actor=actor, origin=origin)


def _untag(version: PackageVersion, *, actor, origin: webhooks.Origin | None) -> None:
    """Drop a tag but keep its manifest, as the untagged version of its digest.

    The tag's one delete event is read before its manifest moves out of it: the version
    the service then removes holds nothing left to describe.
    """
    send_events = versions.prepare_events([version], actor=actor, origin=origin)
    current = Manifest.objects.filter(file__version=version, file__is_lead=True).first()
    if current is not None:
        _retire(version, current)
    versions.remove_version(version, announce=False)
    send_events()


# Listings


def list_tags(package: Package, *, n: int | None, last: str) -> list[str]:
    """Tag names of the image, lowercase and sorted, after `last`, at most `n`."""
    if n == 0:
        return []
    tags = (
        package.versions.published()
        .exclude(version__contains=":")
        .annotate(tag=Lower("version"))
        .order_by("tag")
    )
    if last:
        tags = tags.filter(tag__gt=last.lower())
    tags = tags.values_list("tag", flat=True)
    return list(tags[:n] if n is not None else tags)


def catalog(user, *, n: int, last: str) -> list[str]:
    """Repository names with a real (not staging) version, that `user` may read."""
    published = PackageVersion.objects.published().filter(package=OuterRef("pk"))
    names = (
        Package.objects.filter(
            Exists(published), type=CONTAINER, owner__in=get_adapter().readable_owners(user)
        )
        .annotate(full_name=Concat(Lower("owner__name"), Value("/"), Lower("name")))
        .order_by("full_name")
        .values_list("full_name", flat=True)
    )
    if last:
        names = names.filter(full_name__gt=last.lower())
    return list(names[:n])


def referrers(owner: Owner, image: str, subject: Digest, *, artifact_type: str = "") -> list[dict]:
    """OCI descriptors of the manifests whose `subject` is `subject`, each once."""
    package = find_package(owner, image)
    if package is None:
        return []
    rows = (
        Manifest.objects.filter(package=package, subject_digest=str(subject))
        .select_related("file__blob")
        .order_by("digest", "file_id")
    )
    if artifact_type:
        rows = rows.filter(artifact_type=artifact_type)
    descriptors, seen = [], set()
    for row in rows:
        if row.digest in seen:
            continue
        seen.add(row.digest)
        descriptor = {"mediaType": row.media_type, "digest": row.digest, "size": row.file.blob.size}
        if row.artifact_type:
            descriptor["artifactType"] = row.artifact_type
        if row.annotations:
            descriptor["annotations"] = row.annotations
        descriptors.append(descriptor)
    return descriptors
