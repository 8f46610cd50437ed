"""The `PACKAGES` settings dict: documented defaults, read lazily on first use.

Nothing is read at import time; a value is read when first asked for and kept until
the setting changes (Django's `setting_changed`, which `override_settings` in tests
sends), as DRF does with its settings.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

DEFAULTS = {
    # The alias in settings.STORAGES that blobs and upload staging are written to.
    "STORAGE_ALIAS": "packages",
    # Key prefix of in-progress uploads inside that storage.
    "UPLOAD_PREFIX": "uploads",
    # True forbids anonymous reads everywhere (Gitea's REQUIRE_SIGNIN_VIEW).
    "REQUIRE_SIGNIN_VIEW": False,
    # Names no new owner may take: the host's top-level routes that owner pages would
    # shadow (any case). The default fits the bundled site; a host lists its own.
    "RESERVED_OWNER_NAMES": [
        "api",
        "assets",
        "login",
        "logout",
        "media",
        "new",
        "static",
        "token",
        "v2",
    ],
    # True: any signed-in user may create organisations (and becomes their admin);
    # False: only site admins may (Gitea's DISABLE_REGULAR_ORG_CREATION).
    "ALLOW_ORG_CREATION": True,
    # Who may read and write where, and how users map to owners.
    "ACCESS_ADAPTER": "packages_core.adapter.AccessAdapter",
    # An access token's last-use time is written at most this often (seconds), so
    # a busy CI token does not turn every pull into a database write.
    "TOKEN_LAST_USED_RESOLUTION": 60,
    # How long a process reuses a user's or an access token's row it read (seconds),
    # rather than asking the database on every request (packages_core/lookups.py).
    # Changes made by this process apply at once; changes made by others at most this
    # late. 0 reads them on every request.
    "IDENTITY_CACHE_SECONDS": 1.0,
    # Local disk: fsync blob files (and their directory) before their rows commit,
    # starting the writes to disk as the bytes arrive (packages_core/durability.py).
    # False only where a crash may lose data (tmpfs, throwaway sites).
    "SYNC_WRITES": True,
    # The cache the server's processes share: sign-in failure counts, checked
    # credentials, the registry's content generation. Every worker, and every node,
    # must see the same one (Redis for several nodes); when it fails, requests go on
    # as if it were empty.
    "CACHE": "default",
    # Failed sign-ins allowed from one client (per user name) within the window, in
    # seconds, before it gets 429, on /v2 and the API together; 0 turns throttling off.
    "SIGNIN_FAILURE_LIMIT": 10,
    "SIGNIN_FAILURE_WINDOW": 300,
    # Proxies (addresses or networks; "*" for any) whose X-Forwarded-For names the
    # real client, for counting sign-in failures per client behind a load balancer.
    "TRUSTED_PROXIES": ["127.0.0.1", "::1"],
    # Site-wide quotas; -1 is unlimited. Owners can be given their own in the admin.
    "QUOTA_OWNER_VERSIONS": -1,
    "QUOTA_OWNER_BYTES": -1,
    "QUOTA_BLOB_BYTES": -1,
    # Webhooks (docs/webhooks.md). Hosts (names as written in a webhook's URL, or
    # addresses) a delivery may reach although they resolve to a loopback, private,
    # link-local or metadata address; "*" for any. Empty: only public addresses.
    "WEBHOOK_ALLOWED_HOSTS": [],
    # Seconds to connect, and again to wait for each read of the answer.
    "WEBHOOK_TIMEOUT": 10.0,
    # Attempts before an event is left "failed" (it can be redelivered from the admin).
    "WEBHOOK_MAX_ATTEMPTS": 8,
    # Retries wait RETRY_BASE * 2**(attempt-1) seconds, at most RETRY_MAX, less up to
    # half at random (jitter), so that failed events do not come back in step.
    "WEBHOOK_RETRY_BASE_SECONDS": 10.0,
    "WEBHOOK_RETRY_MAX_SECONDS": 3600.0,
    # Bytes of an answer read (and the first 1,000 kept); the rest is not read.
    "WEBHOOK_RESPONSE_LIMIT": 65536,
    # How long a process reuses the webhooks it looked up for an owner (seconds): a
    # push then costs no query. Changes made by this process apply at once.
    "WEBHOOK_CACHE_SECONDS": 1.0,
    # How long an idle delivery worker sleeps before looking for due events again.
    "WEBHOOK_POLL_SECONDS": 1.0,
}


class AppSettings:
    """Attribute access to one namespaced settings dict with defaults.

    Values are read from `django.conf.settings` when first asked for and kept until
    the setting changes (every request reads several: reading the host's dict each
    time cost a pull tens of microseconds); dotted paths named in `import_strings`
    are imported when read. Unknown names are AttributeErrors, and `unknown_keys()`
    lets a system check report typos in the host's dict.
    """

    def __init__(self, setting_name: str, defaults: dict, import_strings=frozenset()):
        self.setting_name = setting_name
        self.defaults = defaults
        self.import_strings = frozenset(import_strings)
        self._values: dict = {}
        setting_changed.connect(self._forget, weak=False)

    def _forget(self, *, setting, **kwargs) -> None:
        if setting == self.setting_name:
            self._values = {}

    def user_settings(self) -> dict:
        value = getattr(settings, self.setting_name, {})
        if not isinstance(value, dict):
            raise ImproperlyConfigured(f"settings.{self.setting_name} must be a dict.")
        return value

    def __getattr__(self, name: str):
        if name.startswith("_") or name not in self.defaults:
            raise AttributeError(f"Unknown {self.setting_name} setting: {name}")
        try:
            return self._values[name]
        except KeyError:
            pass
        value = self.user_settings().get(name, self.defaults[name])
        if name in self.import_strings and isinstance(value, str):
            value = import_string(value)
        self._values[name] = value
        return value

    def unknown_keys(self) -> list[str]:
        return sorted(set(self.user_settings()) - set(self.defaults))


packages_settings = AppSettings("PACKAGES", DEFAULTS, import_strings={"ACCESS_ADAPTER"})
