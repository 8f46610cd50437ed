"""`manage.py createuser NAME --email E --password P [--admin] [--visibility V]`."""

from packages_core.management.base import PackagesCommand
from packages_core.models.owners import Visibility
from packages_core.services.owners import create_user


class Command(PackagesCommand):
    help = "Create a user (and its owner namespace) non-interactively."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--email", default="")
        parser.add_argument("--password", required=True)
        parser.add_argument("--admin", action="store_true", help="Make a site admin.")
        parser.add_argument(
            "--visibility", default=Visibility.PUBLIC, help="public, limited or private."
        )

    def handle(self, *args, **options):
        user = create_user(
            options["name"],
            email=options["email"],
            password=options["password"],
            is_admin=options["admin"],
            visibility=options["visibility"],
        )
        kind = "site admin" if options["admin"] else "user"
        owner = user.package_owner.name
        self.stdout.write(f"Created {kind} {user.get_username()!r} (owner {owner!r}).")
