"""Readiness: can this process serve the registry right now? Database, storage, shared cache.

Each check is one cheap round trip (a `SELECT 1`, a look at the storage's root or
bucket, a cache write and read), so a load balancer can ask every second. What failed
and why goes to the log; the answer says only which check failed, as it is public.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass

from django.db import connection

from packages_core import shared_cache
from packages_core.content_store import ContentStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    milliseconds: float


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_storage() -> None:
    store = ContentStore.default()
    if store.s3 is not None:
        store.s3.client.head_bucket(Bucket=store.s3.bucket.name)
        return
    root = store.local_path("")
    if root is not None:
        # Made on first write; until then the nearest existing parent must take it.
        while not os.path.exists(root):
            root = os.path.dirname(root)
        if not os.path.isdir(root) or not os.access(root, os.W_OK | os.X_OK):
            raise PermissionError(f"{root} is not a writable directory")
        return
    store.exists("health-probe")


def check_cache() -> None:
    cache = shared_cache.cache()
    key, value = "registry:health", uuid.uuid4().hex
    cache.set(key, value, 10)
    if cache.get(key) != value:
        raise RuntimeError("the cache did not keep a value")


CHECKS = {"database": check_database, "storage": check_storage, "cache": check_cache}


def readiness() -> list[CheckResult]:
    """Every check, timed; a failed check is logged with its error."""
    results = []
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
            ok = True
        except Exception:
            logger.warning("readiness check %r failed", name, exc_info=True)
            ok = False
        results.append(CheckResult(name, ok, (time.perf_counter() - started) * 1000))
    return results
