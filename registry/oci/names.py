"""Image names and tags: what a repository path may hold after the owner (Gitea's patterns)."""

from __future__ import annotations

import re

from registry.oci.errors import InvalidName, quoted

# Path components after the owner, lowercase, separated by single '.', '_' or '-'.
IMAGE_NAME_PATTERN = re.compile(
    r"\A[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*\Z"
)
TAG_PATTERN = re.compile(r"\A[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}\Z")
MAX_NAME_LENGTH = 255


def is_valid_image_name(image: str) -> bool:
    """Whether `image` could be the image part of a repository name (after the owner)."""
    return len(image) <= MAX_NAME_LENGTH and IMAGE_NAME_PATTERN.match(image) is not None


def check_image_name(image: str) -> str:
    """The image part of a repository name (after the owner), or InvalidName."""
    if not is_valid_image_name(image):
        raise InvalidName(
            f"invalid repository name {quoted(image)}: use lowercase letters, digits and "
            "single '.', '_' or '-' between them, with '/' between components",
            detail={"name": image},
        )
    return image


def is_valid_tag(reference: str) -> bool:
    return TAG_PATTERN.match(reference) is not None
