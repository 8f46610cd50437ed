"""Views of the /v2 protocol."""

from django.http import HttpResponse
from django.views.decorators.http import require_safe

API_VERSION_HEADER = ("Docker-Distribution-Api-Version", "registry/2.0")


@require_safe
def ping(request):
    """`GET /v2/`: tells clients this is a v2 registry."""
    response = HttpResponse(b"{}", content_type="application/json")
    response[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]
    return response
