"""`manage.py cleanup_packages`: apply cleanup rules and collect garbage, as Gitea's task does."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from packages_core.exceptions import InvalidInput
from packages_core.services import cleanup

BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Remove what killed processes left in storage with no row, apply the owners' "
        "cleanup rules, drop upload sessions and staged blobs older than the grace "
        "period, drop empty packages and delete blobs nothing refers to."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            default="24h",
            metavar="DURATION",
            help="Grace period for uploads, staged and unreferenced blobs and orphans in "
            "storage: 0s, 30s, 15m, 24h (the default) or 7d.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would be removed; change nothing.",
        )

    def handle(self, *args, older_than, dry_run, **options):
        try:
            grace = cleanup.parse_duration(older_than)
        except InvalidInput as error:
            raise CommandError(str(error)) from None
        bar = ProgressBar(self.stderr) if self.stderr.isatty() else None
        report = cleanup.run_cleanup(
            grace=grace, dry_run=dry_run, progress=bar.show if bar else None
        )
        if bar:
            bar.finish()
        self.stdout.write(("Dry run: " if dry_run else "") + report.summary(dry_run=dry_run))
        if report.held_up:
            raise CommandError(
                f"storage full: {', '.join(report.held_up)} could not be written;"
                " free some space and run cleanup_packages again",
                returncode=3,
            )


class ProgressBar:
    """One line on a terminal, redrawn at most ten times a second."""

    def __init__(self, stream):
        self.stream = stream
        self.drawn_at = 0.0
        self.width = 0

    def show(self, step: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if (total is None or done < total) and now - self.drawn_at < 0.1:
            return
        self.drawn_at = now
        if total is None:
            # A walk whose length is known only at its end: a count, no bar.
            line = f"{step:<13} {done} examined"
        else:
            filled = BAR_WIDTH * done // total if total else BAR_WIDTH
            line = f"{step:<13} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}"
        self.width = max(self.width, len(line))
        self.stream.write(f"\r{line:<{self.width}}", ending="")
        self.stream.flush()

    def finish(self) -> None:
        if self.width:
            self.stream.write(f"\r{' ' * self.width}\r", ending="")
            self.stream.flush()
