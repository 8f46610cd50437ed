"""`manage.py createmirror NAME --upstream URL [--username U --password P] ...`."""

import sys

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from packages_core.exceptions import InvalidInput
from packages_core.management.base import PackagesCommand
from packages_core.models.owners import Visibility
from registry.mirrors.service import MirrorInvalid, create_mirror, parse_ttl, probe


class Command(PackagesCommand):
    stdin = sys.stdin
    help = "Create a mirror: an owner whose images are pulled through from an upstream registry."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The new owner's name (e.g. hub).")
        parser.add_argument(
            "--upstream",
            required=True,
            help="The upstream registry, e.g. https://registry-1.docker.io",
        )
        parser.add_argument("--username", default="", help="The upstream account, if it needs one.")
        parser.add_argument("--password", default="", help="Its password or token.")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read the password from standard input, out of the process list and history.",
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
        if options["password_stdin"]:
            if options["password"]:
                raise CommandError("Give --password or --password-stdin, not both.")
            options["password"] = self.stdin.readline().rstrip("\r\n")
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
        # Said, not refused: an upstream may be down now and up when pulls come.
        self.stdout.write(probe(mirror))
