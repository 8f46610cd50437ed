"""URLs of the REST API and its OpenAPI schema and docs."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from forge.api import (
    schema,  # noqa: F401  registers the access-token scheme with drf-spectacular
    views,
)

# A package name may contain slashes ("team/app"): the version is the last segment,
# the name everything between the type and it. `.../<version>/files` is matched first.
VERSION = r"v1/packages/(?P<owner>[^/]+)/(?P<type>[^/]+)/(?P<name>.+?)/(?P<version>[^/]+)"

urlpatterns = [
    path("v1/token/", views.TokenObtainView.as_view(), name="api-token"),
    path("v1/token/refresh/", views.TokenRefreshView.as_view(), name="api-token-refresh"),
    path("v1/packages/<str:owner>", views.PackageListView.as_view(), name="api-packages"),
    re_path(rf"^{VERSION}/files$", views.VersionFileListView.as_view(), name="api-version-files"),
    re_path(rf"^{VERSION}$", views.VersionView.as_view(), name="api-version"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
