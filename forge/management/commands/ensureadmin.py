"""`manage.py ensureadmin [--reset-password]`: the site admin `admin`, made once, and a
way back in when its password is lost.

It always says what it did: `make run` runs it on every start, and silence left an
operator who had lost the printed password no hint that nothing had changed.
"""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from packages_core.services.owners import create_user

ADMIN_NAME = "admin"
PASSWORD_VARIABLE = "FORGE_ADMIN_PASSWORD"


def admin_user():
    """The user `admin`, or None."""
    User = get_user_model()
    return User.objects.filter(**{User.USERNAME_FIELD: ADMIN_NAME}).first()


class Command(BaseCommand):
    help = (
        "Create the site admin 'admin' if the database has no users yet, with the "
        "password from FORGE_ADMIN_PASSWORD or a generated one printed once. With "
        "--reset-password, give the existing 'admin' that password (or a new generated one)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset-password",
            action="store_true",
            help="Set the password of 'admin' to FORGE_ADMIN_PASSWORD, or to a generated "
            "one printed once; makes 'admin' a site admin and active again.",
        )

    def handle(self, *args, **options):
        if options["reset_password"]:
            self.reset_password()
            return
        if admin_user() is not None:
            self.stdout.write(
                f"The site admin {ADMIN_NAME!r} exists already; its password is unchanged "
                "(`manage.py ensureadmin --reset-password` sets a new one)."
            )
            return
        if get_user_model().objects.exists():
            # Only an empty database gets an admin: a site whose first user was made by
            # hand or by createsuperuser must not find a second, unexpected one.
            self.stdout.write(
                f"The database has users already, so no site admin {ADMIN_NAME!r} was made; "
                "nothing changed."
            )
            return
        password, generated = self.new_password()
        create_user(ADMIN_NAME, password=password, is_admin=True)
        self.report(f"Created the site admin {ADMIN_NAME!r}", password, generated)

    def reset_password(self):
        user = admin_user()
        if user is None:
            raise CommandError(
                f"There is no user {ADMIN_NAME!r}: `ensureadmin` makes it on an empty "
                "database; `manage.py changepassword NAME` sets another user's password."
            )
        password, generated = self.new_password()
        user.set_password(password)
        # The way back in must lead in: a deactivated or demoted admin could not sign in.
        user.is_active = user.is_staff = user.is_superuser = True
        user.save(update_fields=["password", "is_active", "is_staff", "is_superuser"])
        self.report(f"Reset the password of the site admin {ADMIN_NAME!r}", password, generated)

    @staticmethod
    def new_password() -> tuple[str, bool]:
        """FORGE_ADMIN_PASSWORD, or a generated password; and whether it was generated."""
        password = os.environ.get(PASSWORD_VARIABLE, "")
        if password:
            return password, False
        return secrets.token_urlsafe(18), True

    def report(self, done: str, password: str, generated: bool) -> None:
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    f"{done} with password: {password}\n"
                    "It is shown only this once; change it in /admin/."
                )
            )
        else:
            self.stdout.write(f"{done} ({PASSWORD_VARIABLE}).")
