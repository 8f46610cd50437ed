"""Errors the package services raise; callers turn them into HTTP or CLI answers."""

import errno
import sqlite3

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # S3 is the wheel's s3 extra: without it, only disks fail
    STORAGE_ERRORS: tuple[type[Exception], ...] = (OSError,)
else:
    # What a content store raises when the disk or the object store fails.
    STORAGE_ERRORS = (OSError, BotoCoreError, ClientError)


class PackagesError(Exception):
    """Base of every error a packages_core service raises on purpose."""


class InvalidInput(PackagesError, ValueError):
    """A name, role, scope or other argument that the rules do not allow."""


class NameTaken(PackagesError):
    """The name is already used (owner names are unique case-insensitively)."""


class NotFound(PackagesError, LookupError):
    """A user, owner or object named by the caller does not exist."""


class LastAdmin(PackagesError):
    """The change would leave an organisation with no admin to manage it."""


class InUse(PackagesError):
    """The object cannot be removed while others need it (a platform manifest its index
    lists, say); `needed_by` names them, as people know them.
    """

    def __init__(self, message: str, needed_by: list[str]):
        super().__init__(message)
        self.needed_by = needed_by


class TooManySignIns(PackagesError):
    """This client failed to sign in too often lately; it may try again later."""

    def __init__(self, retry_after: int):
        super().__init__(f"too many failed sign-ins; try again in {retry_after} s")
        self.retry_after = retry_after


# errno values of a write that found no room: the disk, or the user's quota on it.
NO_ROOM_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# PostgreSQL's SQLSTATE disk_full; SQLite says so in words (SQLITE_FULL).
DISK_FULL_SQLSTATE = "53100"
SQLITE_FULL_MESSAGE = "database or disk is full"


def is_storage_full(error: BaseException) -> bool:
    """Whether `error`, or one it was raised from, says the disk or the database is full.

    Django wraps database errors (and psycopg keeps the SQLSTATE on its own), so the
    chain of causes is walked.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in NO_ROOM_ERRNOS:
            return True
        if getattr(error, "sqlstate", None) == DISK_FULL_SQLSTATE:
            return True
        if isinstance(error, sqlite3.OperationalError) and SQLITE_FULL_MESSAGE in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False
