"""`manage.py ensureadmin`: on an empty database, create the site admin `admin`."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from packages_core.services.owners import create_user

ADMIN_NAME = "admin"


class Command(BaseCommand):
    help = (
        "Create the site admin 'admin' if the database has no users yet, with the "
        "password from FORGE_ADMIN_PASSWORD or a generated one printed once."
    )

    def handle(self, *args, **options):
        if get_user_model().objects.exists():
            return
        password = os.environ.get("FORGE_ADMIN_PASSWORD", "")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(18)
        create_user(ADMIN_NAME, password=password, is_admin=True)
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    f"Created the site admin {ADMIN_NAME!r} with password: {password}\n"
                    "It is shown only this once; change it in /admin/."
                )
            )
        else:
            self.stdout.write(f"Created the site admin {ADMIN_NAME!r} (FORGE_ADMIN_PASSWORD).")
