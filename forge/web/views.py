"""The forge site's web pages."""

from django.shortcuts import render

from packages_core.adapter import get_adapter
from packages_core.models import Owner


def home(request):
    """The front page: the owners the visitor may see."""
    adapter = get_adapter()
    owners = [owner for owner in Owner.objects.all() if adapter.can_read(request.user, owner)]
    return render(request, "forge/home.html", {"owners": owners})
