"""`manage.py createmirror NAME --upstream URL [--username U --password P] ...`."""

import os

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from packages_core.exceptions import InvalidInput
from packages_core.management.base import PackagesCommand
from packages_core.models.owners import Visibility
from registry.mirrors.service import MirrorInvalid, create_mirror, parse_ttl


class Command(PackagesCommand):
    help = "Create a mirror: an owner whose images are pulled through from an upstream registry."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The new owner's name (e.g. hub).")
        parser.add_argument(
            "--upstream",
            required=True,
            help="The upstream registry, e.g. https://registry-1.docker.io",
        )
        parser.add_argument("--username", default="", help="The upstream account, if it needs one.")
        parser.add_argument(
            "--password",
            default=os.environ.get("FORGE_MIRROR_PASSWORD", ""),
            help="Its password or token (or FORGE_MIRROR_PASSWORD, kept out of the process list).",
        )
        parser.add_argument(
            "--visibility",
            default=Visibility.PUBLIC,
            choices=Visibility.values,
            help="Who may pull.",
        )
        parser.add_argument(
            "--ttl",
            default="10m",
            help="How long a tag is served before it is checked upstream again: 600, 90s, 10m.",
        )

    def handle(self, *args, **options):
        try:
            mirror = create_mirror(
                options["name"],
                options["upstream"],
                username=options["username"],
                password=options["password"],
                visibility=options["visibility"],
                ttl_seconds=parse_ttl(options["ttl"]),
            )
        except (MirrorInvalid, InvalidInput, ValidationError) as error:
            raise CommandError(f"Invalid mirror: {error}") from error
        self.stdout.write(
            f"{mirror.owner.name} mirrors {mirror.upstream_url} "
            f"(tags checked every {mirror.ttl_seconds} s)"
        )
