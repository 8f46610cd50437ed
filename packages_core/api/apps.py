"""App config of the packages REST API, an app of its own that a host may leave out."""

from django.apps import AppConfig


class PackagesApiConfig(AppConfig):
    name = "packages_core.api"
    # Not "api": a label must be unique in the host site, and that one is too common.
    label = "packages_api"
    verbose_name = "Packages REST API"
