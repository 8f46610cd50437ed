"""Root URLs of the forge site: the registry at /v2, the admin, the API and the web pages."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("registry.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("forge.api.urls")),
    path("", include("forge.web.urls")),
]
