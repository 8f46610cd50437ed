"""The upstream registry of a mirror, spoken to as a client: its auth, manifests and blobs.

Auth is whatever the upstream's challenge asks for: none, Basic with the mirror's
credentials, or the Docker token flow (a token from the challenge's realm for the
repository's pull scope, kept until it runs out). Only the mirror's own credentials
ever go upstream; a local user's never do. Every connection, redirects included, goes
to a public address unless the host is in REGISTRY["MIRROR_ALLOWED_HOSTS"]
(packages_core/outbound.py), and a redirect to another host gets no credentials.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import re
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin, urlsplit

from packages_core import outbound, shared_cache
from packages_core.memo import Memo
from registry.conf import registry_settings
from registry.oci.media_types import SUPPORTED_TYPES

logger = logging.getLogger(__name__)

USER_AGENT = "forge-mirror/1"
ACCEPT_MANIFESTS = ", ".join(sorted(SUPPORTED_TYPES))
MAX_REDIRECTS = 5
# Docker Hub's API host, and the names people give it.
DOCKER_HUB = "registry-1.docker.io"
DOCKER_HUB_NAMES = frozenset(
    {DOCKER_HUB, "docker.io", "index.docker.io", "registry.hub.docker.com"}
)
# A token whose answer names no lifetime lasts 60 s (the token spec's default).
DEFAULT_TOKEN_SECONDS = 60
MAX_TOKEN_BYTES = 64 * 1024
CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
# What a token may hold to go in a header: printable ASCII, no spaces.
TOKEN_PATTERN = re.compile(r"[\x21-\x7e]{1,8192}")
BASIC_SECONDS = 3600
# After an upstream failed (unreachable, a timeout, a 5xx or 429), how long no request
# goes to it: pulls serve the cache, or fail at once.
DOWN_SECONDS = 15
DOWN_KEY = "registry:upstream-down:{digest}"

# (upstream, username, scope) -> the Authorization header a token flow gave
_tokens = Memo()


class UpstreamError(Exception):
    """The upstream could not answer what was asked (see the subclasses)."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status


class UpstreamUnavailable(UpstreamError):
    """Unreachable, refused by the address rules, timed out, or a 5xx: cached content
    still serves.
    """


class UpstreamNotFound(UpstreamError):
    """The upstream has no such manifest or blob (a 404)."""


class UpstreamDenied(UpstreamError):
    """The upstream refused the mirror's credentials (a 401 or 403 after signing in)."""


@dataclass(frozen=True)
class Answer:
    """An upstream response, open: the caller reads the body and closes it."""

    response: http.client.HTTPResponse
    connection: http.client.HTTPConnection

    @property
    def status(self) -> int:
        return self.response.status

    def header(self, name: str) -> str:
        return self.response.getheader(name) or ""

    def read(self, amount: int | None = None) -> bytes:
        return self.response.read(amount)

    def close(self) -> None:
        self.response.close()
        self.connection.close()


class Upstream:
    """One upstream registry, with the credentials a mirror has for it."""

    def __init__(
        self, url: str, username: str = "", password: str = "", *, credentials_error: str = ""
    ):
        self.url = url.rstrip("/")
        self.username = username
        self.password = password
        self.host = (urlsplit(self.url).hostname or "").lower()
        self.origin = _origin(self.url)
        # Why the mirror's credentials cannot be used (a password no key opens): every
        # request is refused, so pulls fall back to the cache as for any refusal.
        self.credentials_error = credentials_error
        self.deadline: float | None = None

    def repository(self, image: str) -> str:
        """The upstream's name for an image: Docker Hub keeps official images under
        `library/`, which its clients add to a name without a slash.
        """
        if self.host in DOCKER_HUB_NAMES and "/" not in image:
            return f"library/{image}"
        return image

    def __str__(self) -> str:
        return self.url

    # Requests

    def get(
        self, path: str, *, image: str, accept: str = "", method: str = "GET", whole: bool = True
    ) -> Answer:
        """The upstream's answer to a request on a repository, signed in as its
        challenge asks; redirects followed. UpstreamError for what is not a 2xx.

        `whole`: the exchange, body included, has REGISTRY["MIRROR_TIMEOUT"] in all (a
        manifest, a token, a list); otherwise only each read has (a blob, however big).
        """
        self.deadline = time.monotonic() + registry_settings.MIRROR_TIMEOUT if whole else None
        down = shared_cache.get(self._down_key())
        if down is not None:
            message, since = down
            raise UpstreamUnavailable(
                f"{message} ({time.time() - since:.0f} s ago; not asked again for "
                f"{DOWN_SECONDS} s after a failure)"
            )
        try:
            return self._get(path, image=image, accept=accept, method=method)
        except UpstreamUnavailable as error:
            # Every node's pulls skip a down upstream for a while rather than each
            # waiting out its timeout: the cache serves what it has at once.
            shared_cache.set(self._down_key(), (error.message, time.time()), DOWN_SECONDS)
            raise

    def ping(self) -> int:
        """The status of `GET /v2/`, unsigned: 200 or 401 from a registry."""
        self.deadline = time.monotonic() + registry_settings.MIRROR_TIMEOUT
        answer = self._open("GET", f"{self.url}/v2/", {"User-Agent": USER_AGENT})
        answer.close()
        return answer.status

    def _down_key(self) -> str:
        return DOWN_KEY.format(
            digest=hashlib.sha256(f"{self.url} {self.username}".encode()).hexdigest()
        )

    def _get(self, path: str, *, image: str, accept: str, method: str) -> Answer:
        if self.credentials_error:
            raise UpstreamDenied(f"{self.url}{path}: {self.credentials_error}")
        scope = f"repository:{self.repository(image)}:pull"
        key = (self.url, self.username, scope)
        authorization = _tokens.get(key)
        answer, final_url = self._send(method, path, accept, authorization)
        if answer.status == 401 and answer.header("WWW-Authenticate"):
            challenge = answer.header("WWW-Authenticate")
            answer.close()
            if _origin(final_url) != self.origin:
                # A host a redirect chose asks for credentials: never the mirror's.
                raise UpstreamDenied(
                    f"{self.url}{path}: redirected to {final_url}, which asks to sign in",
                    status=401,
                )
            authorization, seconds = self._authorize(challenge, scope)
            if authorization is None:
                raise UpstreamDenied(
                    f"{self.url}{path}: the upstream refused access (401) and asks for "
                    f"credentials the mirror has not got ({challenge.split(' ')[0]})",
                    status=401,
                )
            if seconds:
                _tokens.set(key, authorization, seconds)
            answer, _ = self._send(method, path, accept, authorization)
        if 200 <= answer.status < 300:
            return answer
        status = answer.status
        detail = self._error_text(answer)
        answer.close()
        where = f"{self.url}{path}"
        if status == 404:
            raise UpstreamNotFound(f"{where}: not found upstream{detail}", status=status)
        if status in (401, 403):
            raise UpstreamDenied(
                f"{where}: the upstream refused access ({status}){detail}", status=status
            )
        if status == 429 or status >= 500:
            raise UpstreamUnavailable(
                f"{where}: the upstream answered {status}{detail}", status=status
            )
        raise UpstreamError(f"{where}: the upstream answered {status}{detail}", status=status)

    def _send(
        self, method: str, path: str, accept: str, authorization: str | None
    ) -> tuple[Answer, str]:
        """One request, following redirects, and the URL that answered it; credentials
        only to the upstream's own origin (scheme, host and port: not to an http:// page
        of an https:// upstream either).
        """
        url = self.url + path
        headers = {"User-Agent": USER_AGENT}
        if accept:
            headers["Accept"] = accept
        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers)
            if authorization and _origin(url) == self.origin:
                sent["Authorization"] = authorization
            answer = self._open(method, url, sent)
            if answer.status in (301, 302, 303, 307, 308) and answer.header("Location"):
                location = urljoin(url, answer.header("Location"))
                answer.close()
                url = location
                if answer.status == 303:
                    method = "GET"
                continue
            return answer, url
        raise UpstreamUnavailable(f"{self.url}{path}: more than {MAX_REDIRECTS} redirects")

    def _open(self, method: str, url: str, headers: dict[str, str]) -> Answer:
        try:
            connection, path = outbound.connect(
                url,
                allowed_hosts=registry_settings.MIRROR_ALLOWED_HOSTS,
                setting='REGISTRY["MIRROR_ALLOWED_HOSTS"] (FORGE_MIRROR_ALLOWED_HOSTS)',
                timeout=registry_settings.MIRROR_TIMEOUT,
                deadline=self.deadline,
            )
        except outbound.AddressRefused as error:
            # Pullers see the message; the addresses are for the log alone.
            logger.warning("mirror upstream %s: refused: %s", self.url, error)
            raise UpstreamUnavailable(f"{url}: refused: {error.public}") from None
        except TimeoutError as error:  # the deadline passed before this connection
            raise UpstreamUnavailable(f"{url}: {error}") from None
        try:
            connection.request(method, path, headers=headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException, ValueError) as error:
            # ValueError: a header http.client will not send (a redirect's or a token's
            # CR, LF or non-Latin-1 character), the upstream's doing.
            connection.close()
            raise UpstreamUnavailable(f"{url}: {type(error).__name__}: {error}") from None
        return Answer(response, connection)

    def _authorize(self, challenge: str, scope: str) -> tuple[str | None, float]:
        """The Authorization header a challenge asks for, and how long it lasts (0: as
        long as the credentials do, for Basic).
        """
        kind, _, params = challenge.partition(" ")
        kind = kind.lower()
        if kind == "basic":
            if not self.username:
                return None, 0
            # Kept like a token, so later requests send it at once rather than after a 401.
            return self._basic(), BASIC_SECONDS
        if kind != "bearer":
            return None, 0
        fields = dict(CHALLENGE_PARAM.findall(params))
        realm = fields.get("realm", "")
        if not realm:
            return None, 0
        query = {"scope": scope}
        if fields.get("service"):
            query["service"] = fields["service"]
        token_url = f"{realm}{'&' if '?' in realm else '?'}{urlencode(query)}"
        headers = {"User-Agent": USER_AGENT}
        realm_scheme = urlsplit(realm).scheme.lower()
        if self.username and (realm_scheme == "https" or self.origin[0] == "http"):
            # Not over plain HTTP to a realm of an upstream reached over TLS.
            headers["Authorization"] = self._basic()
        answer = self._open("GET", token_url, headers)
        try:
            if answer.status != 200:
                raise UpstreamDenied(
                    f"{token_url}: the upstream's token endpoint answered {answer.status}",
                    status=answer.status,
                )
            try:
                document = json.loads(answer.read(MAX_TOKEN_BYTES))
            except (ValueError, OSError, http.client.HTTPException) as error:
                raise UpstreamUnavailable(f"{token_url}: no token in the answer: {error}") from None
        finally:
            answer.close()
        token = (
            document.get("token") or document.get("access_token")
            if isinstance(document, dict)
            else None
        )
        if not isinstance(token, str) or not TOKEN_PATTERN.fullmatch(token):
            raise UpstreamUnavailable(f"{token_url}: no usable token in the answer")
        seconds = document.get("expires_in") or DEFAULT_TOKEN_SECONDS
        # Asked for again a little before it runs out, so no request carries a stale one.
        lifetime = (
            max(float(seconds) - 10, 1)
            if isinstance(seconds, (int, float))
            else DEFAULT_TOKEN_SECONDS
        )
        return f"Bearer {token}", lifetime

    def _basic(self) -> str:
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    @staticmethod
    def _error_text(answer: Answer) -> str:
        """The upstream's own error message, if its body is the spec's error JSON."""
        try:
            document = json.loads(answer.read(4096) or b"{}")
            errors = document.get("errors") or []
            message = errors[0].get("message", "") if errors else ""
        except (ValueError, AttributeError, OSError, http.client.HTTPException):
            return ""
        return f": {message}" if message else ""


def forget_tokens() -> None:
    """Drop every upstream token this process holds (tests; a mirror's credentials changed)."""
    _tokens.clear()


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, the port filled in: what "the same server" means."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port
