"""Who is calling: HTTP Basic credentials (a password or an access token) on /v2 routes.

`authenticate()` returns an `Identity`; the Bearer token flow adds another
credential kind here without the views changing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import authenticate as django_authenticate
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache

from packages_core.models import AccessToken
from packages_core.models.tokens import Scope
from packages_core.services.tokens import TOKEN_PREFIX, authenticate_token
from registry.errors import Unauthorized


@dataclass(frozen=True)
class Identity:
    """A caller: a user (maybe anonymous) and, when it signed in with one, its token."""

    user: object = field(default_factory=AnonymousUser)
    token: AccessToken | None = None

    @property
    def is_anonymous(self) -> bool:
        return not self.user.is_authenticated

    def token_allows(self, scope: str) -> bool:
        """Access tokens narrow what their user may do; passwords do not."""
        return self.token is None or self.token.allows(scope)

    def may_read_packages(self) -> bool:
        return self.token_allows(Scope.READ_PACKAGE)

    def may_write_packages(self) -> bool:
        return self.token_allows(Scope.WRITE_PACKAGE)


ANONYMOUS = Identity()
PASSWORD_CACHE_SECONDS = 300


def challenge(request) -> str:
    """The WWW-Authenticate value that tells clients how to sign in."""
    return 'Basic realm="container registry"'


def parse_basic(header: str) -> tuple[str, str] | None:
    """(username, password) from an `Authorization: Basic ...` header, or None."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def authenticate(request, *, challenge: str) -> Identity:
    """The caller's identity; Unauthorized (with `challenge`) for bad credentials."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return ANONYMOUS
    credentials = parse_basic(header)
    if credentials is None:
        raise Unauthorized("unsupported or malformed Authorization header", challenge=challenge)
    username, secret = credentials
    if not username and not secret:
        # containers/image answers a Basic challenge with empty credentials when it
        # has none: that is an anonymous request, not a failed sign-in.
        return ANONYMOUS
    if secret.startswith(TOKEN_PREFIX):
        # The token alone says who this is; docker and CI tools insist on some
        # user name beside it, and any is accepted, as Gitea and GitHub do.
        token = authenticate_token(secret)
        if token is None:
            raise Unauthorized("invalid, expired or revoked access token", challenge=challenge)
        return Identity(user=token.user, token=token)
    user = check_password(request, username, secret)
    if user is None:
        raise Unauthorized("invalid username or password", challenge=challenge)
    return Identity(user=user)


def check_password(request, username: str, password: str):
    """The active user with these credentials, or None.

    Clients send Basic credentials with every request of a push, and a password
    hash costs ~0.3 s by design, so a success is remembered for a few minutes under
    an HMAC of the credentials. The user's current password hash is part of the
    check, so a changed password stops working at once.
    """
    key = (
        "registry:basic:"
        + hmac.new(
            settings.SECRET_KEY.encode(), f"{username}\0{password}".encode(), hashlib.sha256
        ).hexdigest()
    )
    cached = cache.get(key)
    if cached is not None:
        user_pk, password_hash = cached
        user = get_user_model().objects.filter(pk=user_pk, is_active=True).first()
        if user is not None and user.password == password_hash:
            return user
    user = django_authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        return None
    cache.set(key, (user.pk, user.password), PASSWORD_CACHE_SECONDS)
    return user
