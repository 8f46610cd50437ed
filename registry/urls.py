"""The /v2 routes; a host site mounts them at its root with one include()."""

from django.urls import path

from registry import views

app_name = "registry"

urlpatterns = [
    path("v2/", views.ping, name="ping"),
]
