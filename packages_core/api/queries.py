"""What the API reads: an owner's packages with their figures, one version, its files.

Internal versions (a container image's upload staging) are never counted or found.
"""

from __future__ import annotations

from django.db.models import (
    Case,
    DateTimeField,
    Exists,
    F,
    Func,
    OuterRef,
    QuerySet,
    Subquery,
    When,
)
from django.db.models.functions import Coalesce, Lower

from packages_core import types
from packages_core.models import Owner, Package, PackageFile, PackageVersion
from packages_core.models.packages import is_package_type


def _aggregate(rows: QuerySet, function: str, field: str, output_field) -> Subquery:
    """A correlated subquery answering one aggregate over `rows` (no GROUP BY)."""
    return Subquery(
        rows.order_by()
        .annotate(result=Func(F(field), function=function, output_field=output_field))
        .values("result")
    )


def owner_packages(owner: Owner, *, type: str = "", query: str = "") -> QuerySet[Package]:
    """The owner's packages with at least one published version, by name; a page of
    them gets its figures from `with_figures`, so no figure is worked out for rows
    the page does not show.
    """
    packages = Package.objects.filter(
        Exists(PackageVersion.objects.filter(package=OuterRef("pk")).published()), owner=owner
    )
    if type:
        packages = packages.filter(type=type)
    if query:
        packages = packages.filter(name__icontains=query)
    return packages.order_by(Lower("name"), "type", "pk")


def _newest(versions: QuerySet) -> Subquery:
    return Subquery(versions.order_by("-updated", "-pk").values("version")[:1])


def latest_version(published: QuerySet) -> Case:
    """The name of a package's latest version, for an annotation over packages: the
    most recently pushed of those its type lets be called latest (a container's tags
    of images and indexes, never an artifact that refers to one), else of any.
    """
    newest = _newest(published)
    cases = [
        When(
            type=name,
            then=Coalesce(_newest(published.filter(types.latest_candidates(name))), newest),
        )
        for name in types.with_latest_candidates()
    ]
    return Case(*cases, default=newest) if cases else newest


def with_figures(packages: list[Package]) -> list[Package]:
    """These packages (a page), in their order, each with `version_count`,
    `latest_version` (`latest_version`), `updated` (the last change) and `total_size`
    (bytes of the distinct blobs its published versions use): one query for the page,
    each figure kept on the package or found through an index, whatever the package's
    size.
    """
    published = PackageVersion.objects.filter(package=OuterRef("pk")).published()
    figures = Package.objects.filter(pk__in=[p.pk for p in packages]).annotate(
        latest_version=latest_version(published),
        updated=_aggregate(published, "MAX", "updated", DateTimeField()),
        total_size=F("size"),
    )
    by_id = {package.pk: package for package in figures.select_related("owner")}
    return [by_id[p.pk] for p in packages if p.pk in by_id]


def find_version(owner: Owner, type: str, name: str, version: str) -> PackageVersion | None:
    """A published version by package and version name (both case-insensitive), with
    `total_size`.
    """
    if not is_package_type(type):
        return None
    package = Package.objects.filter(owner=owner, type=type).named(name).first()
    if package is None:
        return None
    versions = package.versions.published().versioned(version)
    return versions.select_related("package").with_size().first()


def version_files(version: PackageVersion) -> QuerySet[PackageFile]:
    """The version's files, the lead file first, with their blobs."""
    return version.files.select_related("blob").order_by("-is_lead", Lower("name"), "pk")
