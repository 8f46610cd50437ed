"""The manifests pulls found lately, reused by this process until any image changes.

A manifest HEAD or GET was one query, whose round trip to PostgreSQL was half of the
request's time in the process. Each process now keeps what it found (the owner's and the
manifest's values, by owner, image and reference) beside a *generation*: a random
token in the shared cache (REGISTRY["CACHE"]) that every change to an image or an owner
replaces (packages_core/changes.py: when a writer takes the image's lock, and again
after its commit). A kept answer is used only while the token is the one it was found
under, so a tag pushed or deleted through any worker or node is seen by all the others
before the push's answer reaches its client: reading the token (a file read, or one
Redis GET) replaces the query.

REGISTRY["PULL_CACHE_SECONDS"] bounds how long an answer is kept whatever the token says:
should a new token ever fail to reach the cache (the cache down at that moment, a crash
between a commit and its word), no answer outlives it. 0 turns the cache off. Only
answers that found a manifest are kept; a miss always asks the database.
"""

from __future__ import annotations

import secrets

from packages_core.memo import Memo
from registry import images, shared_cache
from registry.conf import registry_settings

GENERATION_KEY = "registry:pull-cache-generation"

# (owner, image, reference as asked) -> (generation, the manifest_row)
_found = Memo()


def resolve_manifest(owner_name: str, image: str, reference: str):
    """What `images.resolve_manifest` answers, from this process's copy when the
    images are as they were when it was found.
    """
    seconds = registry_settings.PULL_CACHE_SECONDS
    generation = _generation() if seconds > 0 else None
    if generation is None:
        return images.resolve_manifest(owner_name, image, reference)
    key = (owner_name.lower(), image.lower(), reference)
    kept = _found.get(key)
    if kept is not None and kept[0] == generation:
        return images.resolved(owner_name, kept[1])
    row = images.manifest_row(owner_name, image, reference)
    if row is not None:
        _found.set(key, (generation, row), seconds)
    return images.resolved(owner_name, row)


def _generation() -> str | None:
    """The current token, made if the cache has none; None if the cache fails."""
    token = shared_cache.get(GENERATION_KEY)
    if token is None:
        shared_cache.add(GENERATION_KEY, secrets.token_hex(8), None)
        token = shared_cache.get(GENERATION_KEY)
    return token


def forget(**kwargs) -> None:
    """A receiver of `packages_changed`: a new token, so every process's copies go."""
    _found.clear()
    shared_cache.set(GENERATION_KEY, secrets.token_hex(8), None)
