"""App config of the registry's web pages, an app of its own that a host may leave out."""

from django.apps import AppConfig


class RegistryWebConfig(AppConfig):
    name = "registry.web"
    # The label its URL namespace and template tag library already carry.
    label = "registry_web"
    verbose_name = "Container registry pages"
