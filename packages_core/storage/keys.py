"""The content store's key names: blobs, staging, upload sessions, their pieces and locks."""

from __future__ import annotations

import re
import uuid

from packages_core.conf import packages_settings

# The folder of the content store that holds blobs, and a key of one in it.
BLOB_PREFIX = "blobs"
BLOB_KEY = re.compile(rf"\A{BLOB_PREFIX}/sha256/([0-9a-f]{{2}})/(\1[0-9a-f]{{62}})\Z")
# A session's staging key is `<UPLOAD_PREFIX>/session-<id>`; its lock file and pieces
# add a suffix (LOCK_SUFFIX, PIECES_SUFFIX) to it.
SESSION_KEY = re.compile(r"session-([0-9a-f]{32})(?=\Z|\.)")
LOCK_SUFFIX = ".lock"
PIECES_SUFFIX = ".pieces"
DRAFT_SUFFIX = ".part"


def blob_key(sha256_hex: str) -> str:
    """Where the bytes with this sha256 live in the content store."""
    return f"{BLOB_PREFIX}/sha256/{sha256_hex[:2]}/{sha256_hex}"


def blob_sha256(key: str) -> str | None:
    """The sha256 (hex) whose bytes `key` holds, if it is a blob's key; else None."""
    match = BLOB_KEY.match(key)
    return match[2] if match else None


def upload_prefix() -> str:
    """The folder of the content store that holds bytes not yet a blob."""
    return packages_settings.UPLOAD_PREFIX


def staging_key(name: str | None = None) -> str:
    """A fresh key for bytes whose digest is not known yet."""
    return f"{upload_prefix()}/{name or uuid.uuid4().hex}"


def session_key(session: uuid.UUID) -> str:
    """The staging key of an upload session's bytes."""
    return staging_key(f"session-{session.hex}")


def session_of(key: str) -> uuid.UUID | None:
    """The id of the upload session whose staged bytes, lock file or piece `key` is."""
    prefix = f"{upload_prefix()}/"
    if not key.startswith(prefix):
        return None
    match = SESSION_KEY.match(key, len(prefix))
    return uuid.UUID(match[1]) if match else None


def piece_key(session: str, start: int) -> str:
    """A fresh key for the piece of session key `session` that starts at byte `start`.

    Unique, so two requests racing for the same offset never share an object.
    """
    return f"{session}{PIECES_SUFFIX}/{start:016d}-{uuid.uuid4().hex[:8]}"


def lock_path(path: str) -> str:
    """The lock file beside a local session file."""
    return f"{path}{LOCK_SUFFIX}"


def draft_path(path: str) -> str:
    """A fresh draft beside a local file, renamed into place when complete."""
    return f"{path}.{uuid.uuid4().hex}{DRAFT_SUFFIX}"
