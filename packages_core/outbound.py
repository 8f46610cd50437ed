"""Connections the server opens itself (webhooks, upstream registries), only to public addresses.

A URL an owner or an admin typed can name any host, the machine's own services and the
cloud's metadata endpoint included. Each connection here resolves the host, refuses it
unless every address is public (or the host is listed as allowed), and then connects
to the address it checked, so that a second DNS answer cannot point elsewhere.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from urllib.parse import urlsplit

# Metadata services that sit on otherwise ordinary-looking addresses.
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class AddressRefused(Exception):
    """A URL the server will not connect to (its scheme, or an address that is not public)."""


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is on the public internet: not loopback, private, link-local,
    shared (CGNAT), multicast, reserved or a cloud metadata address.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast and address not in _METADATA


def host_allowed(host: str, allowed_hosts: Iterable[str]) -> bool:
    allowed = {name.strip().lower() for name in allowed_hosts}
    return "*" in allowed or host.lower() in allowed


def resolve(host: str, port: int, allowed_hosts: Iterable[str], setting: str) -> str:
    """The address to connect to for `host`: every address it resolves to must be public,
    unless the host is in `allowed_hosts` (the setting named `setting`, for the message).
    AddressRefused otherwise.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise AddressRefused(f"cannot resolve {host}: {error}") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise AddressRefused(f"{host} has no address")
    if not host_allowed(host, allowed_hosts):
        blocked = [str(a) for a in addresses if not is_public(a)]
        if blocked:
            raise AddressRefused(
                f"{host} resolves to {', '.join(blocked)}, which is not a public address "
                f"(allow the host in {setting})"
            )
    return str(addresses[0])


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to a checked address; `Host` stays the URL's host."""

    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address; the certificate is checked for the URL's host."""

    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def connect(
    url: str, *, allowed_hosts: Iterable[str], setting: str, timeout: float
) -> tuple[http.client.HTTPConnection, str]:
    """An unopened connection to the URL's host at a checked address, and the path (with
    its query) to ask for there. AddressRefused for a URL that is not http(s) or a host
    that is not public.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressRefused(f"not an http(s) URL: {url}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise AddressRefused(f"bad port in {url}: {error}") from None
    address = resolve(parts.hostname, port, allowed_hosts, setting)
    kind = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return kind(parts.hostname, port, address, timeout), path
