"""Word that packages' contents changed, for whoever keeps copies of what they hold."""

from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

# Sent (with no arguments) when a transaction takes a package's lock to change its
# versions or files, or changes an owner, and again once that transaction commits.
# Now: readers in the same transaction (and tests, whose transactions never commit)
# see the change. After the commit: a reader elsewhere that looked between the two
# sends and got the old rows drops them. Receivers drop copies; they must be cheap, and
# their failures are logged, never the write's.
packages_changed = Signal()


def changed() -> None:
    """Announce a change now and after the current transaction commits."""
    _send()
    transaction.on_commit(_send, robust=True)


def _send() -> None:
    for receiver, result in packages_changed.send_robust(sender=None):
        if isinstance(result, Exception):
            logger.warning("%r failed on a package change: %s", receiver, result)
