"""Secrets the server must read back (an upstream's password), sealed with a key from SECRET_KEY.

A password the server presents to another service cannot be hashed like a user's; it is
kept encrypted and authenticated (Fernet: AES-128-CBC with an HMAC-SHA256), under a key
derived from SECRET_KEY for this purpose alone. A database dump without the settings
shows none of them; SECRET_KEY_FALLBACKS still open what older keys sealed, so the key
can be rotated as Django's own signing allows.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

# Names the purpose in the derivation: a key derived for anything else differs.
PURPOSE = b"packages_core.sealed v1"


class SealBroken(ValueError):
    """A sealed value no key of the site opens (the key changed, or the row was altered)."""


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def _keys() -> MultiFernet:
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet(secret) for secret in secrets])


def seal(value: str) -> str:
    """The value encrypted and authenticated; empty stays empty."""
    if not value:
        return ""
    return _keys().encrypt(value.encode()).decode()


def unseal(sealed: str) -> str:
    """The value `seal` sealed; SealBroken if no key of the site opens it."""
    if not sealed:
        return ""
    try:
        return _keys().decrypt(sealed.encode()).decode()
    except InvalidToken:
        raise SealBroken(
            "a sealed secret cannot be opened: SECRET_KEY changed without the old key in "
            "SECRET_KEY_FALLBACKS, or the value was altered"
        ) from None
