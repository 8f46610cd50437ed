"""Slowing down password guessing: too many failed sign-ins from one client get 429.

Failures are counted per client address (packages_core/client_address.py) and user
name, and per client address alone (with a higher limit, against guessing across
many names), in the shared cache
(PACKAGES["CACHE"]), so the limit holds across the server's workers and, with Redis,
across its nodes. A window opens with a client's first failure and lasts
SIGNIN_FAILURE_WINDOW seconds. Successful sign-ins are never throttled by another
user's failures, and reset their own count. If the cache is down, nobody is
throttled (password hashing still costs every guess ~0.3 s).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from packages_core import shared_cache
from packages_core.client_address import client_address
from packages_core.conf import packages_settings
from packages_core.exceptions import TooManySignIns
from packages_core.memo import Memo

# How many times the per-user limit one address may fail across all names.
ADDRESS_LIMIT_FACTOR = 5
KEY_PREFIX = "registry:signin-failures:"
# How long this process trusts that a client had no failures, without asking the shared
# cache again. Failures made here forget it at once; failures made by other processes
# are seen this much later at most, which lets a guesser a guess or so more per process
# (each costing a password hash) before the limit holds.
CLEAN_SECONDS = 1.0

# Clients (address and user name) this process found without failures lately.
_clean = Memo()


def _clean_key(request, username: str) -> str:
    return f"{client_address(request)}\0{username.lower()}"


def _keys(request, username: str) -> tuple[str, str]:
    client = client_address(request)
    named = hashlib.sha256(f"{client}\0{username.lower()}".encode()).hexdigest()
    return f"{KEY_PREFIX}{named}", f"{KEY_PREFIX}{client}"


@dataclass(frozen=True)
class SignIn:
    """One sign-in attempt, checked against the counts: tell it how it went."""

    request: object
    username: str
    had_failures: bool

    def failed(self) -> None:
        _clean.delete(_clean_key(self.request, self.username))
        window = int(packages_settings.SIGNIN_FAILURE_WINDOW)
        now = time.time()
        for key in _keys(self.request, self.username):
            # The counter and its window's end are made together by the first failure
            # and expire together; counting is atomic where the cache is (Redis).
            shared_cache.add(f"{key}:end", now + window, window)
            shared_cache.count(key, window)

    def succeeded(self) -> None:
        """A success clears the user's own count (only when there is one to clear)."""
        if self.had_failures:
            per_user = _keys(self.request, self.username)[0]
            shared_cache.delete_many([per_user, f"{per_user}:end"])


def check(request, username: str) -> SignIn:
    """The attempt, or TooManySignIns if this client has failed too often lately.

    No cache read in the usual case (no failures, checked within CLEAN_SECONDS), else
    one: the counts; the windows' ends only for a count at its limit.
    """
    limit = int(packages_settings.SIGNIN_FAILURE_LIMIT)
    if limit <= 0:
        return SignIn(request, username, had_failures=False)
    clean_key = _clean_key(request, username)
    if _clean.get(clean_key):
        return SignIn(request, username, had_failures=False)
    per_user, per_address = _keys(request, username)
    counts = shared_cache.get_many([per_user, per_address])
    if not counts:
        _clean.set(clean_key, True, CLEAN_SECONDS)
    limits = ((per_user, limit), (per_address, limit * ADDRESS_LIMIT_FACTOR))
    over = [key for key, allowed in limits if counts.get(key, 0) >= allowed]
    if over:
        ends = shared_cache.get_many([f"{key}:end" for key in over])
        now = time.time()
        for key in over:
            window_end = ends.get(f"{key}:end", now + 1)
            if window_end > now:
                retry_after = max(1, int(window_end - now) + 1)
                raise TooManySignIns(retry_after)
    return SignIn(request, username, had_failures=per_user in counts)
