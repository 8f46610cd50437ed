"""Repository names and tags: what the /v2 paths may contain (Gitea's patterns)."""

from __future__ import annotations

import re

from packages_core.models.owners import is_owner_name
from registry.errors import NameInvalid

# Path components after the owner, lowercase, separated by single '.', '_' or '-'.
IMAGE_NAME_PATTERN = re.compile(
    r"\A[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*\Z"
)
TAG_PATTERN = re.compile(r"\A[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}\Z")
MAX_NAME_LENGTH = 255


def check_owner_name(owner: str) -> str:
    """The owner part of a repository name, or NameInvalid: checked before any query, so
    nothing that no owner could be called (a NUL byte, say) reaches the database.
    """
    if not is_owner_name(owner):
        raise NameInvalid(
            f"invalid repository name: {_shown(owner)} cannot be a user or organisation",
            detail={"name": owner},
        )
    return owner


def check_image_name(image: str) -> str:
    """The image part of a repository name (after the owner), or NameInvalid."""
    if len(image) > MAX_NAME_LENGTH or not IMAGE_NAME_PATTERN.match(image):
        raise NameInvalid(
            f"invalid repository name {_shown(image)}: use lowercase letters, digits and "
            "single '.', '_' or '-' between them, with '/' between components",
            detail={"name": image},
        )
    return image


def is_valid_repository(name: str) -> bool:
    """Whether `name` ("owner/image", the owner in any case) could name a repository."""
    owner, _, image = name.partition("/")
    return (
        is_owner_name(owner)
        and len(image) <= MAX_NAME_LENGTH
        and bool(IMAGE_NAME_PATTERN.match(image))
    )


def is_valid_tag(reference: str) -> bool:
    return TAG_PATTERN.match(reference) is not None


def _shown(value: str, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
