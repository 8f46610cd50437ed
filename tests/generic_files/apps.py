"""The generic-file type registers itself, as any package type's app does."""

from django.apps import AppConfig


class GenericFilesConfig(AppConfig):
    name = "tests.generic_files"
    label = "generic_files"

    def ready(self):
        from packages_core import types
        from tests.generic_files.package_type import GENERIC

        types.register(GENERIC)
