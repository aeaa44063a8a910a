"""yt-dlp with every request of its own (pages, APIs, redirects) through the SSRF guard.

yt-dlp's built-in request handlers resolve and connect by themselves, so a page could lead
it to the metadata service or a private address. Here its request director holds one handler
that sends each request with `open_url`: the same address checks, the same pinned connection
and the same per-hop redirect checks as the media bytes.
"""

from __future__ import annotations

import functools
from typing import Any

import yt_dlp
from yt_dlp.networking.common import Request, RequestHandler, Response
from yt_dlp.networking.exceptions import RequestError

from upscaler.errors import InputError
from upscaler.net.ssrf import UrlGuard, open_url

#: Dropped from yt-dlp's headers: the response body is handed over as it arrives (no decoding).
_UNDECODED = {"accept-encoding"}


class GuardedHandler(RequestHandler):
    """A yt-dlp request handler that only speaks through `open_url` and one `UrlGuard`."""

    RH_KEY = "Guarded"
    RH_NAME = "guarded"
    _SUPPORTED_URL_SCHEMES = ("http", "https")
    _SUPPORTED_PROXY_SCHEMES = ()
    _SUPPORTED_FEATURES = ()
    guard: UrlGuard = UrlGuard()

    def _check_extensions(self, extensions: dict[str, Any]) -> None:
        super()._check_extensions(extensions)
        extensions.pop("timeout", None)  # one timeout for all requests (socket_timeout)
        extensions.pop("cookiejar", None)  # cookies are not kept between requests

    def _send(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _UNDECODED}
        try:
            response, final = open_url(
                request.url,
                self.guard,
                headers,
                timeout=float(self.timeout),
                method=request.method,
                body=request.data if isinstance(request.data, bytes) else None,
            )
        except InputError as exc:
            raise RequestError(str(exc)) from None
        return Response(response, final, dict(response.getheaders()), response.status)


class GuardedYoutubeDL(yt_dlp.YoutubeDL):
    """A YoutubeDL whose only way to the network is `GuardedHandler` with `guard`."""

    def __init__(self, params: dict[str, Any], guard: UrlGuard) -> None:
        super().__init__(params)
        self._guard = guard

    @functools.cached_property
    def _request_director(self):
        director = self.build_request_director([GuardedHandler])
        director.handlers[GuardedHandler.RH_KEY].guard = self._guard
        return director
