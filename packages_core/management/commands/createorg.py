"""`manage.py createorg NAME --owner USER [--visibility V]`."""

from packages_core.management.base import PackagesCommand
from packages_core.models.owners import Visibility
from packages_core.services.owners import create_org, get_user


class Command(PackagesCommand):
    help = "Create an organisation with USER as its first admin member."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--owner", required=True, help="The user who administers it.")
        parser.add_argument(
            "--visibility", default=Visibility.PUBLIC, help="public, limited or private."
        )

    def handle(self, *args, **options):
        org = create_org(
            options["name"], owner_user=get_user(options["owner"]), visibility=options["visibility"]
        )
        self.stdout.write(f"Created organisation {org.name!r}.")
