"""The `REGISTRY` settings dict: documented defaults, read lazily on every access."""

from packages_core.conf import AppSettings

DEFAULTS = {
    # The URL clients reach the site at (token realm, pull commands); '' derives it
    # from each request's host.
    "EXTERNAL_URL": "",
}

registry_settings = AppSettings("REGISTRY", DEFAULTS)
