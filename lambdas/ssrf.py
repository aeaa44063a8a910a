"""SSRF guard for fetching user-given URLs: re-exported from the core, `upscaler.net.ssrf`.

The guard is pure stdlib, so it lives in the core package (the CLI's `upscaler dataset build
URL` uses the same code as the fetch Lambda); this module keeps the Lambdas' import path.
"""

from __future__ import annotations

from upscaler.net.ssrf import (
    METADATA,
    NAT64,
    REDIRECTS,
    SCHEMES,
    IPAddress,
    IPNetwork,
    Resolver,
    Target,
    UnsafeURLError,
    UrlGuard,
    blocked_reason,
    literal_ip,
    open_url,
    system_resolver,
)

__all__ = [
    "METADATA",
    "NAT64",
    "REDIRECTS",
    "SCHEMES",
    "IPAddress",
    "IPNetwork",
    "Resolver",
    "Target",
    "UnsafeURLError",
    "UrlGuard",
    "blocked_reason",
    "literal_ip",
    "open_url",
    "system_resolver",
]
