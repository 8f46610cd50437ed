"""`manage.py createtoken USER --name N --scope S[,S] [--expires-days D]`: prints the token."""

from packages_core.management.base import PackagesCommand
from packages_core.services.owners import get_user
from packages_core.services.tokens import create_access_token


class Command(PackagesCommand):
    help = (
        "Create an access token for USER and print only the token, so scripts can "
        "capture it: TOKEN=$(manage.py createtoken ci --name ci --scope write:package)."
    )

    def add_arguments(self, parser):
        parser.add_argument("user")
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scope", required=True, help="read:package, write:package, or both comma-separated."
        )
        parser.add_argument("--expires-days", type=int, default=None)

    def handle(self, *args, **options):
        _, secret = create_access_token(
            get_user(options["user"]),
            options["name"],
            options["scope"],
            expires_in_days=options["expires_days"],
        )
        self.stdout.write(secret)
