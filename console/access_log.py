"""The console's access log: method, route template, status and time, nothing else.

aiohttp's default access log line carries the client's address, the whole request line with
its query string, the referrer and the user agent. A caseworker's address and browser, and
case numbers in paths, say who works on which case: the log keeps the route's template
(``/cases/{number}``), never the path as requested.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

logger = logging.getLogger("console.access")
UNMATCHED = "(no route)"


def route_template(request: web.BaseRequest) -> str:
    """The matched route's template, or ``(no route)`` (a 404, a static file's own path)."""
    match_info = getattr(request, "match_info", None)
    route = getattr(match_info, "route", None)
    resource = getattr(route, "resource", None)
    if resource is None:
        return UNMATCHED
    info = resource.get_info()
    template = info.get("formatter") or info.get("path") or info.get("prefix")
    return str(template) if template else UNMATCHED


class TemplateAccessLogger(AbstractAccessLogger):
    """``GET /cases/{number} 200 12.3 ms``: for ``web.run_app(access_log_class=...)``."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %d %.1f ms", request.method, route_template(request),
                         response.status, time * 1000)
