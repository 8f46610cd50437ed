"""Root URLs of the forge site: the registry at /v2, the admin, and the web pages."""

from django.contrib import admin
from django.urls import include, path

from forge import views

urlpatterns = [
    path("", include("registry.urls")),
    path("admin/", admin.site.urls),
    path("", views.home, name="home"),
]
