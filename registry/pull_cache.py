"""The manifests pulls found lately, reused by this process until any image changes.

A manifest HEAD or GET was one query, whose round trip to PostgreSQL was half of the
request's time in the process. Each process now keeps what it found (the owner's and the
manifest's values, by owner, image and reference) beside the content generation it
was found under (registry/generation.py), and uses it only while the generation is the
same. Every change to an image or an owner, through any worker or node, replaces the
generation before the change's answer reaches its client: reading it (a file read, or
one Redis GET) replaces the query.

REGISTRY["PULL_CACHE_SECONDS"] bounds how long an answer is kept whatever the generation
says: should a new one ever fail to reach the cache (the cache down at that moment, a
crash between a commit and its word), no answer outlives it. 0 turns this off. Only
answers that found a manifest are kept; a miss always asks the database.
"""

from __future__ import annotations

from packages_core.memo import Memo
from registry import generation as content_generation
from registry import images
from registry.conf import registry_settings

# (owner, image, reference as asked) -> (generation, the manifest_row)
_found = Memo()


def resolve_manifest(owner_name: str, image: str, reference: str):
    """What `images.resolve_manifest` answers, from this process's copy when the
    images are as they were when it was found.
    """
    seconds = registry_settings.PULL_CACHE_SECONDS
    generation = content_generation.current() if seconds > 0 else None
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


def forget(**kwargs) -> None:
    """A receiver of `packages_changed`: this process's copies go at once (the others'
    when they see the new generation).
    """
    _found.clear()
