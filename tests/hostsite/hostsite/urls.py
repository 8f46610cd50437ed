"""The host's URLs: its front page, the registry's /v2 at the root, its pages under /registry/."""

from django.conf import settings
from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path


def front_page(request):
    return HttpResponse("Example Corp intranet", content_type="text/plain")


urlpatterns = [
    # Docker clients only look at /v2/: the protocol is mounted at the root.
    path("", include("registry.urls")),
]
if not settings.PROTOCOL_ONLY:
    # The optional REST API and web pages, under a prefix of the host's choosing.
    urlpatterns += [
        path("registry/api/", include("packages_core.api.urls")),
        path("registry/", include("registry.web.urls")),
    ]
urlpatterns += [
    path("admin/", admin.site.urls),
    path("", front_page, name="front_page"),
]
