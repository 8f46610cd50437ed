"""The package types a site serves, each registered by its app: what its versions mean.

`packages_core` knows owners, packages, versions, files and blobs, whatever they hold.
What a type means by them is the type's own: which version names are tags, what
cleanup rules must never remove, which versions others need (so no one removes them)
and which go with the one that needed them, which versions may be called the latest,
where a version's web page is, how the REST API shows a version, what webhooks hear
when versions go (`RemovalEvents`: asked by `services.versions.remove_versions`, so
every face that removes versions announces them the same way). A type's app
registers one `PackageType` in its `AppConfig.ready()`; packages_core asks the
registry here and never imports the app (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q

if TYPE_CHECKING:
    from packages_core.models import Package, PackageVersion
    from packages_core.services.webhooks import Origin


class CleanupPolicy:
    """What cleanup rules never remove from packages of one type. The default protects
    nothing; a type with versions that others need (a container index's platforms, say)
    gives its own.
    """

    def protected_versions(self, package: Package) -> set[str]:
        """Lowercase version names of `package` that no rule removes."""
        return set()


class RemovalPolicy:
    """Which versions of one type others need, and which go with the one that needed
    them. Every removal asks it (`services.versions.remove_versions`), whichever face
    (a protocol, the pages, the API, the admin) asked for the removal. The default:
    versions stand alone.
    """

    def needed_by(self, version: PackageVersion, going: set[int]) -> list[str]:
        """What still needs `version`, as people name it ("index 1.0"), when the
        versions whose ids are in `going` (`version`'s among them) go together; empty
        when it may go.
        """
        return []

    def freed_by(self, version: PackageVersion, going: set[int]) -> list[PackageVersion]:
        """Versions nothing needs any more once those in `going` are gone, which go with
        them (a container index's untagged platforms). Asked before any of them goes.
        """
        return []


class RemovalEvents:
    """What webhooks hear when versions of one type go: a `delete` event per version.

    `services.versions.remove_versions` asks it inside the removal's transaction, for
    every version that goes there (those taken along too), whichever face removed them,
    and only when a webhook could hear of the owner. `prepare` reads what the events
    say while the rows are still there, and returns what writes them (through
    `services.webhooks.enqueue`), called once the rows are gone. `actor` is the user who
    asked, a name (`services.webhooks.CLEANUP_ACTOR`) or None. The default sends Gitea's
    package event, which says nothing particular to a type (owner, name, type, version),
    to `gitea` webhooks; a container's events are the registry's (`registry/events.py`).
    """

    def prepare(
        self, versions: list[PackageVersion], *, actor, origin: Origin
    ) -> Callable[[], None]:
        from packages_core.services import webhooks

        return webhooks.version_deletions(versions, actor=actor, origin=origin)


def _always(name: str) -> bool:
    return True


@dataclass(frozen=True)
class PackageType:
    """One package type: its name in URLs and rows, and what its versions mean."""

    # The `Package.type` value, a lowercase word ("container").
    name: str
    # What people call one package of the type ("Container image").
    label: str
    # Whether a version name is a tag (a name people chose and may move), as opposed to
    # one the content gives (a container's untagged manifest, named by its digest).
    is_tag: Callable[[str], bool] = _always
    cleanup_policy: CleanupPolicy = field(default_factory=CleanupPolicy)
    removal_policy: RemovalPolicy = field(default_factory=RemovalPolicy)
    removal_events: RemovalEvents = field(default_factory=RemovalEvents)
    # The versions that may be called a package's latest, as a filter on its
    # versions (a container's tags of images and indexes, never an artifact that
    # refers to one); None: any version. A callable, as a type's Q may name its own
    # models, which are not ready when the type is made.
    latest_candidates: Callable[[], Q] | None = None
    # The path of a version's web page, or None where the type has no pages (or the
    # site does not install them).
    web_url: Callable[[PackageVersion], str | None] = lambda version: None
    # A Django REST framework serializer for the type's versions, as a dotted path,
    # subclassing `packages_core.api.serializers.VersionSerializer`; empty for that one.
    # A path, so that a type's app imports DRF only where the API is installed.
    api_serializer: str = ""


_types: dict[str, PackageType] = {}


def register(package_type: PackageType) -> None:
    """Add a type; registering the same name twice is a mistake unless it is the same."""
    from packages_core.models.packages import is_package_type

    if not is_package_type(package_type.name):
        raise ImproperlyConfigured(
            f"A package type is a lowercase word, like 'container', not {package_type.name!r}."
        )
    known = _types.get(package_type.name)
    if known is not None and known != package_type:
        raise ImproperlyConfigured(f"The package type {package_type.name!r} is registered twice.")
    _types[package_type.name] = package_type


def unregister(name: str) -> None:
    """Forget a type (tests that register one of their own clean up with this)."""
    _types.pop(name, None)


def get(name: str) -> PackageType:
    """The type named `name`; a type nobody registered behaves as the defaults say
    (rows of an app since removed stay readable and can be cleaned up).
    """
    found = _types.get(name)
    return found if found is not None else PackageType(name=name, label=name)


def is_registered(name: str) -> bool:
    return name in _types


def names() -> list[str]:
    """The registered types' names, sorted: the choices of a cleanup rule's type."""
    return sorted(_types)


def choices(current: str = "") -> list[tuple[str, str]]:
    """(name, label) of each registered type, for a cleanup rule's form; a saved rule's
    own type too, even when nobody registers it any more.
    """
    listed = names()
    if current and current not in listed:
        listed.append(current)
    return [(name, get(name).label) for name in listed]


def is_tag(version: PackageVersion) -> bool:
    """Whether the version is named by a tag, by its package's type."""
    return get(version.package.type).is_tag(version.version)


def web_url(version: PackageVersion) -> str | None:
    return get(version.package.type).web_url(version)


def protected_versions(package: Package) -> set[str]:
    return get(package.type).cleanup_policy.protected_versions(package)


def latest_candidates(name: str) -> Q:
    """The filter on a package's versions keeping those its type lets be called latest."""
    candidates = get(name).latest_candidates
    return candidates() if candidates is not None else Q()


def with_latest_candidates() -> list[str]:
    """The registered types that narrow which versions may be called latest."""
    return [name for name in names() if _types[name].latest_candidates is not None]
