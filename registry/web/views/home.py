"""The front page."""

from django.db.models import Count, Q
from django.db.models.functions import Lower
from django.shortcuts import render

from packages_core.adapter import get_adapter
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
    context = {
        "owners": owners,
        "recent": browse.describe_images(browse.recent_images(readable)),
        "registry_host": browse.registry_host(request),
    }
    return render(request, "registry/web/home.html", context)
