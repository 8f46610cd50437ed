"""Content digests (`algorithm:hex`) as the OCI image spec defines them."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from registry.oci.errors import InvalidDigest

# The algorithms we can verify, with the length of their hex encoding.
ALGORITHMS = {"sha256": 64, "sha512": 128}

DIGEST_PATTERN = re.compile(r"\A([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)\Z")


@dataclass(frozen=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())


def looks_like_digest(value: str) -> bool:
    """Whether `value` has digest syntax (so it names content, not a tag)."""
    return DIGEST_PATTERN.match(value) is not None


def parse_digest(value: str) -> Digest:
    """A digest we can verify; InvalidDigest for bad syntax or an unknown algorithm."""
    match = DIGEST_PATTERN.match(value or "")
    if match is None:
        raise InvalidDigest(f"{value!r} is not a digest", detail={"digest": value})
    algorithm, hex_ = match.groups()
    length = ALGORITHMS.get(algorithm)
    if length is None:
        raise InvalidDigest(
            f"unsupported digest algorithm {algorithm!r}; use sha256 or sha512",
            detail={"digest": value},
        )
    if len(hex_) != length or not re.fullmatch(r"[0-9a-f]+", hex_):
        raise InvalidDigest(
            f"{algorithm} digests are {length} lowercase hex characters",
            detail={"digest": value},
        )
    return Digest(algorithm, hex_)
