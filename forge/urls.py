"""Root URLs of the forge site: the registry at /v2, the packages API, the web pages, the admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("registry.urls")),
    path("api/", include("packages_core.api.urls")),
    # Before the admin, so the owner named "admin" has pages (see registry/web/urls.py).
    path("", include("registry.web.urls")),
    path("admin/", admin.site.urls),
]
