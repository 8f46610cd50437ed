"""Who is calling, and what may they do: Basic credentials or a Bearer token on /v2 routes.

Basic credentials are a password or an access token (as the password). A Bearer token
comes from `/v2/token` (registry/bearer.py) and allows exactly the access it grants.
Either way `authenticate()` returns an `Identity`, and views ask it whether an action
on a repository is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.contrib.auth import authenticate as django_authenticate
from django.contrib.auth.models import AnonymousUser
from django.utils.crypto import constant_time_compare, salted_hmac

from packages_core import lookups, shared_cache, throttling
from packages_core.credentials import parse_basic
from packages_core.exceptions import TooManySignIns
from packages_core.memo import Memo
from packages_core.models import AccessToken
from packages_core.services.tokens import authenticate_token, looks_like_token
from registry import bearer
from registry.conf import registry_settings
from registry.errors import TooManyRequests, Unauthorized

PASSWORD_CACHE_SECONDS = 300

# This process's copy of the verified credentials it has seen (packages_core/memo.py): what
# it holds is checked against the user's row on every use, as the shared cache's is.
_verified = Memo()
CREDENTIALS_SALT = "registry.authentication.credentials"
PASSWORD_FINGERPRINT_SALT = "registry.authentication.password"


@dataclass(frozen=True)
class Identity:
    """A caller: a user (maybe anonymous), the access token it signed in with, and,
    for a Bearer token, the access that token grants (None: no limit beyond the rules).
    """

    user: object = field(default_factory=AnonymousUser)
    token: AccessToken | None = None
    access: dict[str, frozenset[str]] | None = None
    catalog: bool = True

    @property
    def is_anonymous(self) -> bool:
        return not self.user.is_authenticated

    @property
    def is_bearer(self) -> bool:
        return self.access is not None

    def grants(self, repository: str, action: str) -> bool:
        """Whether the credentials cover `action` on `repository` ("owner/image")."""
        if self.access is None:
            return True
        return bearer.permits(self.access.get(repository.lower(), frozenset()), action)


ANONYMOUS = Identity()


def external_base(request) -> str:
    """scheme://host of the site as clients reach it: the configured external URL's
    origin (the registry lives at the root even under a sub-path), else the request's.
    """
    configured = registry_settings.EXTERNAL_URL
    if configured:
        parts = urlsplit(configured)
        return f"{parts.scheme}://{parts.netloc}"
    return f"{request.scheme}://{request.get_host()}"


def service_name(request) -> str:
    """The `service` of challenges and the audience of tokens: the host clients use."""
    return urlsplit(external_base(request)).netloc


def challenge(request, scope: str = "", *, error: str = "") -> str:
    """The WWW-Authenticate value that sends clients to the token endpoint."""
    value = f'Bearer realm="{external_base(request)}/v2/token",service="{service_name(request)}"'
    if scope:
        value += f',scope="{scope}"'
    if error:
        value += f',error="{error}"'
    return value


def authenticate(request, *, scope: str = "") -> Identity:
    """The caller's identity; Unauthorized (with a challenge for `scope`) for bad
    credentials, TooManyRequests after repeated failed sign-ins.
    """
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return ANONYMOUS
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        try:
            verified = bearer.verify(value.strip(), service=service_name(request))
        except bearer.InvalidToken as exc:
            raise Unauthorized(
                f"invalid token: {exc}", challenge=challenge(request, scope, error="invalid_token")
            ) from None
        return Identity(
            user=verified.user,
            token=verified.token,
            access=verified.access,
            catalog=verified.catalog,
        )
    credentials = parse_basic(header)
    if credentials is None:
        raise Unauthorized(
            "unsupported or malformed Authorization header", challenge=challenge(request, scope)
        )
    return authenticate_basic(request, *credentials, scope=scope)


def authenticate_basic(request, username: str, secret: str, *, scope: str = "") -> Identity:
    if not username and not secret:
        # containers/image answers a challenge with empty credentials when it has
        # none: that is an anonymous request, not a failed sign-in.
        return ANONYMOUS
    try:
        attempt = throttling.check(request, username)
    except TooManySignIns as exc:
        raise TooManyRequests(str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    if "\x00" in username or "\x00" in secret:
        # No user name, password or token holds a NUL, and asking the database for one
        # (PostgreSQL) would be an error rather than no match: a failed sign-in.
        identity, failure = None, "invalid username or password"
    elif looks_like_token(secret):
        # The token alone says who this is; docker and CI tools insist on some
        # user name beside it, and any is accepted, as Gitea and GitHub do.
        token = authenticate_token(secret)
        identity = Identity(user=token.user, token=token) if token is not None else None
        failure = "invalid, expired or revoked access token"
    else:
        user = check_password(request, username, secret)
        identity = Identity(user=user) if user is not None else None
        failure = "invalid username or password"
    if identity is None:
        attempt.failed()
        raise Unauthorized(failure, challenge=challenge(request, scope))
    attempt.succeeded()
    return identity


def check_password(request, username: str, password: str):
    """The active user with these credentials, or None.

    Clients send Basic credentials with every request of a push, and a password
    hash costs ~0.3 s by design, so a success is remembered for a few minutes in the
    shared cache (and this process's memory in front of it), under an HMAC of the
    credentials. Beside the user's id it keeps an HMAC of the user's password hash
    (never the hash itself), checked against the user's row on every use, so a
    changed password or a deactivated user stops working at once.
    """
    key = "registry:basic:" + salted_hmac(CREDENTIALS_SALT, f"{username}\0{password}").hexdigest()
    cached = _verified.get(key)
    if cached is None:
        cached = shared_cache.get(key)
        if cached is not None:
            _verified.set(key, cached, PASSWORD_CACHE_SECONDS)
    if cached is not None:
        user_pk, fingerprint = cached
        user = lookups.active_user(user_pk)
        if user is not None and constant_time_compare(fingerprint, _fingerprint(user)):
            return user
    user = django_authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        return None
    _verified.set(key, (user.pk, _fingerprint(user)), PASSWORD_CACHE_SECONDS)
    shared_cache.set(key, (user.pk, _fingerprint(user)), PASSWORD_CACHE_SECONDS)
    return user


def _fingerprint(user) -> str:
    return salted_hmac(PASSWORD_FINGERPRINT_SALT, user.password).hexdigest()
