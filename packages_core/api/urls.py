"""URLs of the REST API and its OpenAPI schema and docs: `include("packages_core.api.urls")`."""

from django.apps import apps
from django.conf import settings
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

# Importing schema registers the access-token scheme with drf-spectacular.
from packages_core.api import schema, views, webhooks

app_name = "packages_api"

# A package name may contain slashes ("team/app"): the version is the last segment,
# the name everything between the type and it. `.../<version>/files` is matched first.
VERSION = r"v1/packages/(?P<owner>[^/]+)/(?P<type>[^/]+)/(?P<name>.+?)/(?P<version>[^/]+)"
WEBHOOK = "v1/owners/<str:owner>/webhooks/<int:webhook_id>"

# drf-spectacular settings for this API's schema, unless the host's SPECTACULAR_SETTINGS
# says otherwise.
SCHEMA = {
    key: value
    for key, value in {
        "TITLE": "Packages API",
        "DESCRIPTION": "Packages, versions and files: container images and every other type.",
        "VERSION": "1",
    }.items()
    if key not in getattr(settings, "SPECTACULAR_SETTINGS", {})
}

urlpatterns = [
    path("v1/token/", views.TokenObtainView.as_view(), name="api-token"),
    path("v1/token/refresh/", views.TokenRefreshView.as_view(), name="api-token-refresh"),
    path("v1/packages/<str:owner>", views.PackageListView.as_view(), name="api-packages"),
    re_path(rf"^{VERSION}/files$", views.VersionFileListView.as_view(), name="api-version-files"),
    re_path(rf"^{VERSION}$", views.VersionView.as_view(), name="api-version"),
    path("v1/owners/<str:owner>/webhooks", webhooks.WebhookListView.as_view(), name="api-webhooks"),
    path(WEBHOOK, webhooks.WebhookView.as_view(), name="api-webhook"),
    path(
        f"{WEBHOOK}/deliveries",
        webhooks.WebhookDeliveryListView.as_view(),
        name="api-webhook-deliveries",
    ),
    path(f"{WEBHOOK}/test", webhooks.WebhookTestView.as_view(), name="api-webhook-test"),
    path(
        f"{WEBHOOK}/deliveries/<int:delivery_id>/redeliver",
        webhooks.WebhookRedeliverView.as_view(),
        name="api-webhook-redeliver",
    ),
]

# The Swagger UI needs drf-spectacular's templates: a host that installs the app (and,
# offline, drf_spectacular_sidecar with SWAGGER_UI_DIST "SIDECAR") gets it.
urlpatterns += [
    path(
        "schema/",
        SpectacularAPIView.as_view(
            generator_class=schema.ApiSchemaGenerator, custom_settings=SCHEMA
        ),
        name="api-schema",
    ),
]
if apps.is_installed("drf_spectacular"):
    urlpatterns += [
        path(
            "docs/",
            SpectacularSwaggerView.as_view(url_name="packages_api:api-schema"),
            name="api-docs",
        ),
    ]
