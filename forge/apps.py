"""App config for the bundled forge site."""

from django.apps import AppConfig


class ForgeConfig(AppConfig):
    name = "forge"
    verbose_name = "Forge site"
