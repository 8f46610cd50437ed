"""A URLconf that mounts the registry under a prefix, for the mount-point system check."""

from django.urls import include, path

urlpatterns = [path("registry/", include("registry.urls"))]
