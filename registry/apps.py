"""App config for the registry protocol app."""

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Container registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from packages_core import types
        from packages_core.changes import packages_changed
        from registry import checks, generation, pull_cache
        from registry.mirrors import service as mirrors
        from registry.models import Mirror
        from registry.package_type import CONTAINER_TYPE

        checks.register()
        types.register(CONTAINER_TYPE)
        # The process's own copies first, then every process's generation.
        packages_changed.connect(pull_cache.forget, dispatch_uid="registry.pull_cache.forget")
        packages_changed.connect(generation.replace, dispatch_uid="registry.generation.replace")
        for signal in (post_save, post_delete):
            signal.connect(mirrors.forget, sender=Mirror, dispatch_uid=f"registry.mirrors.{signal}")
