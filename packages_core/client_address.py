"""The address of the client behind a request, seen through the proxies the site trusts.

Behind nginx every request comes from nginx's address, so counting failed sign-ins
per REMOTE_ADDR would count all clients as one (and let one guesser lock everybody
out). When the request comes from a trusted proxy (PACKAGES["TRUSTED_PROXIES"], which
the forge site fills from FORGE_FORWARDED_ALLOW_IPS like gunicorn), the client is the
last address in X-Forwarded-For that is not itself a trusted proxy; addresses before
it are whatever the client claimed and are not believed.
"""

from __future__ import annotations

import functools
import ipaddress

from packages_core.conf import packages_settings


@functools.lru_cache(maxsize=16)
def _networks(trusted: tuple[str, ...]):
    if "*" in trusted:
        return None
    networks = []
    for item in trusted:
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            continue  # reported by the system check packages.E007
    return tuple(networks)


def is_trusted_proxy(address: str) -> bool:
    networks = _networks(tuple(packages_settings.TRUSTED_PROXIES))
    if networks is None:
        return True
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request) -> str:
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if not forwarded or not is_trusted_proxy(remote):
        return remote
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted_proxy(hop):
            return hop
    return hops[0] if hops else remote
