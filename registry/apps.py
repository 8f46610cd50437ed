"""App config for the registry protocol app."""

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Container registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from packages_core.services import cleanup
        from registry import checks
        from registry.cleanup import ContainerCleanupPolicy
        from registry.images import CONTAINER

        checks.register()
        cleanup.register_policy(CONTAINER, ContainerCleanupPolicy())
