"""Owner pages: a user's or organisation's images, and the header every owner page shares."""

from django.core.exceptions import BadRequest
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat

from packages_core import shared_cache
from packages_core.models.limits import UNLIMITED
from packages_core.models.packages import storable
from packages_core.services import quotas
from registry import generation
from registry.mirrors.service import mirror_of
from registry.web import browse
from registry.web.access import can_manage, can_write, readable_owner

IMAGES_PER_PAGE = 20
# An owner's usage, kept with the content generation it was worked out under: the bytes
# of its distinct blobs take a scan of all its files (30-50 ms at 20,000).
USAGE_KEY = "registry:web:usage:{pk}"
USAGE_SECONDS = 3600


def owner_context(request, owner, tab: str) -> dict:
    """What the owner header of every owner page shows; usage only to those who may
    push, since what an owner stores is not the business of its readers.
    """
    writer = can_write(request, owner)
    return {
        "owner": owner,
        "tab": tab,
        "image_total": browse.owner_images(owner).count(),
        "member_total": owner.memberships.count() if owner.is_org else 0,
        "can_write": writer,
        "can_manage": can_manage(request, owner),
        "usage": describe_usage(owner) if writer else "",
        "mirror": mirror_of(owner),
    }


def describe_usage(owner) -> str:
    """What the owner stores against its limits: "12 of 100 versions · 1.2 GB of 10 GB"."""
    used, limits = usage(owner), quotas.limits_for(owner)
    if limits.versions == UNLIMITED:
        versions = f"{used.versions} version{'s' * (used.versions != 1)} (unlimited)"
    else:
        versions = f"{used.versions} of {limits.versions} version{'s' * (limits.versions != 1)}"
    size = filesizeformat(used.bytes)
    if limits.bytes == UNLIMITED:
        size = f"{size} (unlimited)"
    else:
        size = f"{size} of {filesizeformat(limits.bytes)}"
    return f"{versions} · {size}"


def owner(request, owner):
    """An owner's page is its list of images."""
    found = readable_owner(request, owner)
    return redirect("registry_web:owner_packages", owner=found.name)


def usage(owner) -> quotas.Usage:
    """The owner's usage, worked out again only when an image or owner changed since."""
    now = generation.current()
    key = USAGE_KEY.format(pk=owner.pk)
    kept = shared_cache.get(key) if now is not None else None
    if kept is not None and kept[0] == now:
        return kept[1]
    used = quotas.usage(owner)
    if now is not None:
        shared_cache.set(key, (now, used), USAGE_SECONDS)
    return used


def owner_packages(request, owner):
    owner = readable_owner(request, owner)
    query = request.GET.get("q", "").strip()
    if not storable(query):
        raise BadRequest("A search cannot contain a NUL character.")
    paginator = Paginator(browse.owner_images(owner, query), IMAGES_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    context = {
        **owner_context(request, owner, "packages"),
        "query": query,
        "page": page,
        "images": browse.describe_images(page.object_list),
    }
    return render(request, "registry/web/owner_packages.html", context)
