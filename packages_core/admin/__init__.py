"""The Django admin for the package domain, a module per model family."""

from packages_core.admin import blobs, limits, owners, packages, tokens, webhooks

__all__ = ["blobs", "limits", "owners", "packages", "tokens", "webhooks"]
