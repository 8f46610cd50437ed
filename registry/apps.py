"""App config for the registry protocol app."""

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Container registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from registry import checks

        checks.register()
