"""Root URLs of the forge site: the registry at /v2, the API, the web pages and the admin."""

from django.contrib import admin
from django.urls import include, path

from forge.web.urls import owner_patterns

urlpatterns = [
    path("", include("registry.urls")),
    path("api/", include("forge.api.urls")),
    path("", include("forge.web.urls")),
    path("admin/", admin.site.urls),
    path("", include(owner_patterns)),
]
