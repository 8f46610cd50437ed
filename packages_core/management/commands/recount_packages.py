"""`manage.py recount_packages`: work every package's kept figures out again."""

from packages_core.management.base import PackagesCommand
from packages_core.services import figures


class Command(PackagesCommand):
    help = (
        "Work out again every package's published version count and size from its "
        "versions and files, and put right those that were off (written behind the "
        "services' back, by hand in the database say)."
    )

    def handle(self, *args, **options):
        wrong = figures.recount()
        self.stdout.write(f"{wrong} package(s) had figures that were off; they are right now.")
