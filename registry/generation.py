"""The content generation: a token in the shared cache that every change to an image or
an owner replaces, so copies of what they held can tell they are out of date.

`packages_core/changes.py` says when: as a writer takes an image's lock or changes an
owner, and again after its commit. A copy made under the current token is as good as
asking the database; one made under another is not. The token is random, never a
count, so one the cache lost and made again can never match an old copy.
"""

from __future__ import annotations

import secrets

from packages_core import shared_cache

KEY = "registry:content-generation"


def current() -> str | None:
    """The current token, made if the cache has none; None if the cache fails (then no
    copy can be trusted).
    """
    token = shared_cache.get(KEY)
    if token is None:
        shared_cache.add(KEY, secrets.token_hex(8), None)
        token = shared_cache.get(KEY)
    return token


def replace(**kwargs) -> None:
    """A new token (a receiver of `packages_changed`)."""
    shared_cache.set(KEY, secrets.token_hex(8), None)
