"""Race-safe row creation on top of the database's unique constraints."""

from collections.abc import Callable
from typing import TypeVar

from django.db import IntegrityError, models, transaction

M = TypeVar("M", bound=models.Model)


def get_or_create_unique(
    existing: Callable[[], M | None], create: Callable[[], M]
) -> tuple[M, bool]:
    """Return the row `existing()` finds, or the one `create()` makes.

    Unlike `QuerySet.get_or_create`, the lookup may differ from the unique key (a
    case-insensitive name, say). When two requests create at once, the unique
    constraint fails the slower insert, its savepoint is rolled back, and it returns
    the winner's row: no error and no duplicate.
    """
    row = existing()
    if row is not None:
        return row, False
    try:
        with transaction.atomic():
            return create(), True
    except IntegrityError:
        row = existing()
        if row is None:
            raise
        return row, False
