"""What the package management commands share: service errors become one-line failures."""

from django.core.management.base import BaseCommand, CommandError

from packages_core.exceptions import PackagesError


class PackagesCommand(BaseCommand):
    """A command whose service errors exit 1 with their one-line message, no traceback."""

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except PackagesError as exc:
            raise CommandError(str(exc)) from exc
