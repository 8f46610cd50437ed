"""Errors the package services raise; callers turn them into HTTP or CLI answers."""


class PackagesError(Exception):
    """Base of every error a packages_core service raises on purpose."""


class InvalidInput(PackagesError, ValueError):
    """A name, role, scope or other argument that the rules do not allow."""


class NameTaken(PackagesError):
    """The name is already used (owner names are unique case-insensitively)."""


class NotFound(PackagesError, LookupError):
    """A user, owner or object named by the caller does not exist."""
