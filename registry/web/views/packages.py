"""Image pages: a version in detail, the list of an image's versions, and removing one."""

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from packages_core.exceptions import InUse
from packages_core.services.versions import removal_blockers
from registry import events, images
from registry.web import browse
from registry.web.access import can_write, readable_image, readable_owner, require_write

VERSIONS_PER_PAGE = 20


def package(request, owner, image):
    """An image's own address: its most recently pushed tag, else its list of versions."""
    owner_row, found = readable_image(request, owner, image)
    tag = browse.latest_tag(found)
    names = {"owner": owner_row.name, "image": found.name}
    if tag is None:
        return redirect("registry_web:package_versions", **names)
    return redirect("registry_web:package_version", **names, reference=tag.version)


def _find_version(request, owner_name, image, reference):
    owner, package = readable_image(request, owner_name, image)
    version = browse.find_version(package, reference)
    if version is None:
        raise Http404("No such version.")
    return owner, package, version


def package_version(request, owner, image, reference):
    """One tag or manifest: how to pull it, what it holds, and what refers to it."""
    owner_row = readable_owner(request, owner)
    found = images.find_package(owner_row, image)
    version = browse.find_version(found, reference) if found is not None else None
    if version is None:
        # `container/a/b` names either version b of image a or the image a/b itself.
        if images.find_package(owner_row, f"{image}/{reference}") is not None:
            return package(request, owner, f"{image}/{reference}")
        raise Http404("No such version.")
    detail = browse.version_detail(version)
    context = {
        "owner": owner_row,
        "can_write": can_write(request, owner_row),
        "image": found.name,
        "mirrored_from": browse.mirrored_from(owner_row, found.name),
        "detail": detail,
        "metadata": detail.metadata,
        "layers_have_commands": any(layer.command for layer in detail.layers),
        "labels": sorted(detail.metadata.get("labels", {}).items()),
        "annotations": sorted(detail.metadata.get("annotations", {}).items()),
        "pull_command": browse.pull_command(
            browse.registry_host(request), owner_row, found.name, detail
        ),
    }
    return render(request, "registry/web/package_version.html", context)


def package_versions(request, owner, image):
    """The image's versions: tagged or untagged, newest, oldest or by name, 20 a page."""
    owner, package = readable_image(request, owner, image)
    kind = request.GET.get("type", "")
    kind = kind if kind in browse.VERSION_KINDS else ""
    order = request.GET.get("sort", "")
    order = order if order in browse.VERSION_ORDERS else browse.NEWEST
    paginator = Paginator(browse.image_versions(package, kind=kind, order=order), VERSIONS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "owner": owner,
        "can_write": can_write(request, owner),
        "image": package.name,
        "mirrored_from": browse.mirrored_from(owner, package.name),
        "kind": kind,
        "order": order,
        "page": page,
        "versions": browse.describe_versions(page.object_list),
    }
    return render(request, "registry/web/package_versions.html", context)


@require_http_methods(["GET", "POST"])
def delete_version(request, owner, image, reference):
    """Ask, then remove a version (a tag, or an untagged manifest); writers only.

    An untagged manifest an index lists is not removed: the page says which index
    needs it. A tag such a manifest has is removed as a name, the manifest kept.
    """
    owner, package, version = _find_version(request, owner, image, reference)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    require_write(request, owner)
    names = {"owner": owner.name, "image": package.name}
    if request.method == "POST":
        try:
            images.delete_version(version, actor=request.user, origin=events.origin_of(request))
        except InUse as refusal:
            messages.error(request, _refusal(version, refusal.needed_by))
            return redirect("registry_web:package_version", **names, reference=version.version)
        messages.success(request, f"Deleted {owner.name}/{package.name} {version.version}.")
        if package.versions.published().exists():
            return redirect("registry_web:package_versions", **names)
        return redirect("registry_web:owner_packages", owner=owner.name)
    is_tagged = images.is_tag(version.version)
    needed_by = [] if is_tagged else removal_blockers([version]).get(version.pk, [])
    context = {
        "owner": owner,
        "can_write": can_write(request, owner),
        "image": package.name,
        "version": version,
        "is_tagged": is_tagged,
        "is_index": browse.is_index(version),
        "refusal": _refusal(version, needed_by) if needed_by else "",
    }
    return render(request, "registry/web/version_delete.html", context)


def _refusal(version, needed_by: list[str]) -> str:
    return (
        f"{version.version} cannot be deleted: {', '.join(needed_by)} lists it, and pulls "
        "of that platform would fail. Delete the index first; it takes its platforms along."
    )
