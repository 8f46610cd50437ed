"""`manage.py createwebhook OWNER|--site --url URL [--secret] [--events] [--format] [--filter]`."""

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from packages_core.management.base import PackagesCommand
from packages_core.models import Owner
from packages_core.models.webhooks import FORMATS, GITEA
from packages_core.services.webhooks import WebhookInvalid, create_webhook


class Command(PackagesCommand):
    help = "Create a webhook on an owner (or the site) and print its id."

    def add_arguments(self, parser):
        parser.add_argument("owner", nargs="?", help="The user or organisation it watches.")
        parser.add_argument("--site", action="store_true", help="Watch every owner instead.")
        parser.add_argument("--url", required=True, help="Where events are POSTed.")
        parser.add_argument("--secret", default="", help="Signs every body (HMAC-SHA256).")
        parser.add_argument(
            "--events",
            default="push,delete",
            help="Some of push, delete, pull (default push,delete).",
        )
        parser.add_argument("--format", default=GITEA, choices=FORMATS, help="The body's shape.")
        parser.add_argument("--filter", default="", help="A glob on image names, e.g. 'app/*'.")

    def handle(self, *args, **options):
        if options["site"] == bool(options["owner"]):
            raise CommandError("Name an OWNER or give --site, not both.")
        owner = None
        if options["owner"]:
            owner = Owner.objects.named(options["owner"]).first()
            if owner is None:
                raise CommandError(f"No user or organisation {options['owner']!r}.")
        try:
            webhook = create_webhook(
                owner,
                options["url"],
                secret=options["secret"],
                events=options["events"],
                format=options["format"],
                name_filter=options["filter"],
            )
        except (WebhookInvalid, ValidationError) as error:
            raise CommandError(f"Invalid webhook: {error}") from error
        self.stdout.write(str(webhook.pk))
