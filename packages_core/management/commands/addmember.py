"""`manage.py addmember ORG USER --role read|write|admin`."""

from packages_core.management.base import PackagesCommand
from packages_core.models import Membership
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
        before = Membership.objects.filter(owner=org, user=user).values_list("role", flat=True)
        previous = before.first()
        membership = set_membership(org, user, options["role"])
        name = user.get_username()
        if previous is None:
            said = f"{name} is now a member of {org.name} with {membership.role} access."
        elif previous == membership.role:
            said = f"{name} is a member of {org.name} with {membership.role} access already."
        else:
            said = (
                f"{name} is still a member of {org.name}, now with {membership.role} access "
                f"instead of {previous}."
            )
        self.stdout.write(said)
