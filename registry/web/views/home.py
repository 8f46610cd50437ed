"""The front page.

Its list of owners leaves out site admins' own namespaces while they hold no images:
accounts such as the `admin` that `ensureadmin` makes are for running the site, not
for publishing. An admin who pushes an image is listed like anyone else.
"""

from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import Lower
from django.shortcuts import render

from packages_core import access
from packages_core.adapter import get_adapter
from packages_core.models import Package
from registry import images
from registry.web import browse


def home(request):
    """The owners the visitor may see, and their most recently pushed images."""
    readable = get_adapter().readable_owners(request.user)
    owners = readable.annotate(
        image_count=Count(
            "packages",
            filter=Q(packages__type=images.CONTAINER, packages__versions__is_internal=False),
            distinct=True,
        )
    ).order_by(Lower("name"))
    published = Package.objects.filter(
        owner=OuterRef("pk"), type=images.CONTAINER, versions__is_internal=False
    )
    # Not an aggregate: a HAVING on the joined user's column would need it grouped.
    owners = owners.filter(Q(user__isnull=True) | Q(user__is_superuser=False) | Exists(published))
    context = {
        "owners": owners,
        "can_create_org": access.can_create_org(request.user),
        "recent": browse.describe_images(browse.recent_images(readable)),
        "registry_host": browse.registry_host(request),
    }
    return render(request, "registry/web/home.html", context)
