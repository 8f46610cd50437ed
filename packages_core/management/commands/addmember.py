"""`manage.py addmember ORG USER --role read|write|admin`."""

from packages_core.management.base import PackagesCommand
from packages_core.services.owners import get_owner, get_user, set_membership


class Command(PackagesCommand):
    help = "Add a user to an organisation, or change the user's role there."

    def add_arguments(self, parser):
        parser.add_argument("org")
        parser.add_argument("user")
        parser.add_argument("--role", required=True, help="read, write or admin.")

    def handle(self, *args, **options):
        org = get_owner(options["org"])
        user = get_user(options["user"])
        membership = set_membership(org, user, options["role"])
        self.stdout.write(f"{user.get_username()} is now {membership.role} in {org.name}.")
