"""What several of the domain's admins show and filter by: links, sizes, limits, types."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import BigIntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html

from packages_core.models import (
    Package,
    PackageFile,
)
from packages_core.models.limits import UNLIMITED

# Foreign keys to the host's user model use raw ids, not autocomplete: autocomplete
# needs the user model registered in this admin site with search_fields, and a host's
# custom user model may not be.
USER_SEARCH_FIELD = f"user__{get_user_model().USERNAME_FIELD}"


class PackageTypeFilter(admin.SimpleListFilter):
    """Filter by package type, offering the types that packages actually have.

    The choices come from the (small) package table, not from a DISTINCT over the
    (possibly huge) table being listed.
    """

    title = "package type"
    parameter_name = "package_type"
    lookup = "package__type"

    def lookups(self, request, model_admin):
        found = Package.objects.order_by("type").values_list("type", flat=True).distinct()
        return [(type_, type_) for type_ in found]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.lookup: self.value()})
        return queryset


class OwnPackageTypeFilter(PackageTypeFilter):
    lookup = "type"


class VersionPackageTypeFilter(PackageTypeFilter):
    lookup = "version__package__type"


def describe_limit(value: int | None, *, as_size: bool = False) -> str:
    """A quota value as people read it: site default, unlimited, or the amount."""
    if value is None:
        return "site default"
    if value == UNLIMITED:
        return "unlimited"
    return filesizeformat(value) if as_size else str(value)


def admin_link(obj, label=None) -> str:
    """A link to the object's change page in the default admin site."""
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label if label is not None else obj)


def changelist_link(model, label: str, **filters) -> str:
    """A link to the model's changelist in the default admin site, filtered by `filters`."""
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode(filters), label)


def related_changelist_link(obj, related_name: str, noun: str) -> str:
    """A link to the changelist of the rows `obj.<related_name>` holds, saying how many;
    "-" on the add page, where there are none yet.
    """
    if obj.pk is None:
        return "-"
    rows = getattr(obj, related_name)
    filters = {f"{rows.field.name}__id__exact": obj.pk}
    return changelist_link(rows.model, f"{rows.count()} {noun}(s)", **filters)


def per_row_file_aggregate(link: str, aggregate):
    """`aggregate` over the package files whose `link` is the listed row, 0 for none.

    A correlated subquery rather than a join with GROUP BY: a page of the list costs
    one query, and the database evaluates it only for the rows on that page.
    """
    files = PackageFile.objects.filter(**{link: OuterRef("pk")}).order_by().values(link)
    subquery = Subquery(files.annotate(value=aggregate).values("value"))
    return Coalesce(subquery, 0, output_field=BigIntegerField())


def without_digest_algorithm(search_term: str) -> str:
    """Let people paste `sha256:<hex>` where the column holds only the hex."""
    return search_term.replace("sha256:", "").strip()
