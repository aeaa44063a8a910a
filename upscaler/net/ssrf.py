"""SSRF guard for fetching user-given URLs (stdlib only: the core and the Lambdas share it).

Only http(s); the host is resolved (numeric forms such as `2130706433`, `0x7f.1` or
`0177.0.0.1` included) and every address must be public: loopback, private, link-local,
shared, reserved, multicast and cloud metadata addresses are refused, in IPv4, IPv6 and IPv6
forms that embed an IPv4 address. Connections go to the address that was checked (no second
DNS lookup to rebind) and redirects are followed by hand, each hop checked again.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

from upscaler.errors import InputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

SCHEMES = {"http": 80, "https": 443}
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
NAT64 = ipaddress.ip_network("64:ff9b::/96")
REDIRECTS = (301, 302, 303, 307, 308)
_LEGACY_V4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)


class UnsafeURLError(InputError):
    """The URL is not one the fetcher may open."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (A and AAAA)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURLError(f"cannot resolve host {host!r} ({exc})") from None
    return [str(info[4][0]) for info in infos]


def literal_ip(host: str) -> IPAddress | None:
    """The address a numeric host stands for, legacy IPv4 forms included; None for a name."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_V4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise UnsafeURLError(f"malformed numeric host {host!r}") from None
    return None


def _embedded_v4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if addr.ipv4_mapped:
        return addr.ipv4_mapped
    if addr.sixtofour:
        return addr.sixtofour
    if addr.teredo:
        return addr.teredo[1]
    if addr in NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def blocked_reason(addr: IPAddress) -> str | None:
    """Why `addr` may not be fetched from, or None when it is a public unicast address."""
    if addr in METADATA:
        return "a cloud metadata address"
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded_v4(addr)
        if inner is not None:
            reason = blocked_reason(inner)
            return f"an IPv6 form of {inner}, {reason}" if reason else None
    for flag in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(addr, f"is_{flag}"):
            return f"a {flag.replace('_', '-')} address"
    if not addr.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`address`) and what to ask for."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


@dataclass(frozen=True)
class UrlGuard:
    """Checks URLs; `allow` lists networks let through anyway (tests: a loopback server)."""

    allow: tuple[IPNetwork, ...] = ()
    resolver: Resolver = system_resolver

    def check(self, url: str) -> Target:
        """Return the target of `url`, or raise UnsafeURLError saying why it is refused."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise UnsafeURLError(f"malformed URL {url!r} ({exc})") from None
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise UnsafeURLError(f"only http and https URLs are fetched, not {scheme or 'none'!r}")
        if parts.username is not None or parts.password is not None:
            raise UnsafeURLError("URLs with credentials are not fetched")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise UnsafeURLError(f"URL has no host: {url!r}")
        port = port or SCHEMES[scheme]
        literal = literal_ip(host)
        addresses = (
            [literal]
            if literal
            else [ipaddress.ip_address(a.split("%", 1)[0]) for a in self.resolver(host, port)]
        )
        if not addresses:
            raise UnsafeURLError(f"host {host!r} has no address")
        for addr in addresses:
            reason = blocked_reason(addr)
            if reason and not any(addr in net for net in self.allow):
                raise UnsafeURLError(f"refusing {url!r}: {host} is {reason} ({addr})")
        return Target(url, scheme, host, port, str(addresses[0]))


def open_url(
    url: str,
    guard: UrlGuard,
    headers: dict[str, str] | None = None,
    max_redirects: int = 5,
    timeout: float = 30.0,
    method: str = "GET",
    body: bytes | None = None,
) -> tuple[http.client.HTTPResponse, str]:
    """Request `url` through the guard, following redirects by hand; (200 response, final URL).

    A 303, or a 301/302 of a POST, continues as a GET without the body (as browsers do).
    """
    for _ in range(max_redirects + 1):
        target = guard.check(url)
        parts = urlsplit(url)
        https = target.scheme == "https"
        conn_class = http.client.HTTPSConnection if https else http.client.HTTPConnection
        conn = conn_class(target.host, target.port, timeout=timeout)

        def pinned(address, timeout=timeout, source=None, _ip=target.address):
            return socket.create_connection((_ip, address[1]), timeout, source)

        conn._create_connection = pinned  # connect to the checked address, not a new lookup
        path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        try:
            sent = {"User-Agent": "upscaler-fetch/1", **(headers or {})}
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise InputError(f"{url}: download failed ({exc})") from None
        if response.status in REDIRECTS:
            location = response.getheader("Location")
            conn.close()
            if not location:
                raise InputError(f"{url}: redirect without a Location")
            url = urljoin(url, location)
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", None
            continue
        if response.status != 200:
            conn.close()
            raise InputError(f"{url}: HTTP {response.status} {response.reason}")
        return response, url
    raise UnsafeURLError(f"more than {max_redirects} redirects")
