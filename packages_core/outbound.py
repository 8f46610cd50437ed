"""Connections the server opens itself (webhooks, upstream registries), only to public addresses.

A URL an owner or an admin typed can name any host, the machine's own services and the
cloud's metadata endpoint included. Each connection here resolves the host, refuses it
unless every address is public (or the host is listed as allowed), and then connects
to the address it checked, so that a second DNS answer cannot point elsewhere.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

# Metadata services that sit on otherwise ordinary-looking addresses.
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
# IPv6 prefixes whose last 32 bits are an IPv4 address a translator reaches: NAT64's
# well-known prefix, and the deprecated IPv4-compatible addresses.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")


class AddressRefused(Exception):
    """A URL the server will not connect to (its scheme, or an address that is not public).

    `str()` is the whole story, for the server's log: the addresses a host resolves to.
    `public` says only that the host was refused, for whoever typed the URL: the same
    words whether it resolves to a private address or not at all, so a URL field does
    not map the network behind the server for its user.
    """

    def __init__(self, detail: str, public: str = ""):
        super().__init__(detail)
        self.public = public or detail


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is on the public internet: not loopback, private, link-local,
    shared (CGNAT), multicast, reserved or a cloud metadata address, nor an IPv6 address
    that carries such an IPv4 address to a translator (mapped, NAT64, 6to4, compatible).
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not address.is_multicast and address not in _METADATA


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches through a translator, if it is such."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def host_allowed(host: str, allowed_hosts: Iterable[str]) -> bool:
    allowed = {name.strip().lower() for name in allowed_hosts}
    return "*" in allowed or host.lower() in allowed


def resolve(host: str, port: int, allowed_hosts: Iterable[str], setting: str) -> str:
    """The address to connect to for `host`: every address it resolves to must be public,
    unless the host is in `allowed_hosts` (the setting named `setting`, for the message).
    AddressRefused otherwise.
    """
    public = (
        f"{host} is not a public address, or cannot be resolved (a site admin may allow "
        f"the host in {setting})"
    )
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise AddressRefused(f"cannot resolve {host}: {error}", public) from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise AddressRefused(f"{host} has no address", public)
    if not host_allowed(host, allowed_hosts):
        blocked = [str(a) for a in addresses if not is_public(a)]
        if blocked:
            raise AddressRefused(
                f"{host} resolves to {', '.join(blocked)}, which is not a public address "
                f"(allow the host in {setting})",
                public,
            )
    return str(addresses[0])


def _time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the other end took longer than the time it had in all")
    return left


class _DeadlineSocket:
    """A socket whose every send and receive may take only the time left before
    `deadline` (on the monotonic clock); TimeoutError once it has passed. http.client
    reads the answer through `makefile`, so its reads come here too.
    """

    def __init__(self, sock: socket.socket, deadline: float):
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data, *args):
        self._sock.settimeout(_time_left(self._deadline))
        return self._sock.sendall(data, *args)

    def recv_into(self, buffer, *args):
        self._sock.settimeout(_time_left(self._deadline))
        return self._sock.recv_into(buffer, *args)

    def makefile(self, mode="rb", *args, **kwargs):
        # socket.SocketIO reads with our recv_into; http.client asks only for "rb".
        return io.BufferedReader(socket.SocketIO(self, "rb"))

    def _decref_socketios(self):
        pass  # the connection closes the socket itself

    def __getattr__(self, name):
        return getattr(self._sock, name)


class _Pinned:
    """What both connection kinds share: the checked address, and the deadline if any."""

    address: str
    deadline: float | None

    def _timeout(self) -> float:
        return self.timeout if self.deadline is None else _time_left(self.deadline)

    def _open(self) -> socket.socket:
        return socket.create_connection((self.address, self.port), self._timeout())

    def _bounded(self, sock: socket.socket):
        return sock if self.deadline is None else _DeadlineSocket(sock, self.deadline)


class _PinnedHTTP(_Pinned, http.client.HTTPConnection):
    """HTTP to a checked address; `Host` stays the URL's host."""

    def __init__(self, host, port, address, timeout, deadline):
        super().__init__(host, port, timeout=timeout)
        self.address, self.deadline = address, deadline

    def connect(self):
        self.sock = self._bounded(self._open())


class _PinnedHTTPS(_Pinned, http.client.HTTPSConnection):
    """HTTPS to a checked address; the certificate is checked for the URL's host."""

    def __init__(self, host, port, address, timeout, deadline):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address, self.deadline = address, deadline

    def connect(self):
        sock = self._open()
        sock.settimeout(self._timeout())  # the handshake gets what connecting left
        self.sock = self._bounded(self._context.wrap_socket(sock, server_hostname=self.host))


def connect(
    url: str,
    *,
    allowed_hosts: Iterable[str],
    setting: str,
    timeout: float,
    deadline: float | None = None,
) -> tuple[http.client.HTTPConnection, str]:
    """An unopened connection to the URL's host at a checked address, and the path (with
    its query) to ask for there. `timeout` bounds connecting and each read; a
    `deadline` (on the monotonic clock) bounds the whole exchange as well, so a peer
    trickling bytes cannot hold it longer. AddressRefused for a URL that is not http(s)
    or a host that is not public.
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
    if deadline is not None:
        timeout = min(timeout, _time_left(deadline))
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return kind(parts.hostname, port, address, timeout, deadline), path
