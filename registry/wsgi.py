"""A WSGI front that sends the registry protocol through a short middleware stack.

A pull is a handful of small requests; sessions, messages, CSRF, clickjacking and a
site's own middleware each cost every one of them a little and give the protocol
nothing (it authenticates each request itself). A host site wraps its application:

    application = protocol_routed(get_wsgi_application())

and `/v2` requests go through `PROTOCOL_MIDDLEWARE` only, everything else through
`settings.MIDDLEWARE` as before.
"""

from __future__ import annotations

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.utils.module_loading import import_string

# Security headers (HSTS, SSL redirect) and ALLOWED_HOSTS (CommonMiddleware checks the
# host) apply to the protocol as to the pages.
PROTOCOL_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
)
PROTOCOL_PREFIXES = ("/v2/",)


class ProtocolHandler(WSGIHandler):
    """Django's WSGI handler with a given middleware list instead of settings.MIDDLEWARE.

    The list may only hold middleware that takes requests and responses (no view,
    template or exception hooks), such as PROTOCOL_MIDDLEWARE; the chain is built as
    Django builds it for such middleware.
    """

    def __init__(self, middleware=PROTOCOL_MIDDLEWARE):
        self.middleware = tuple(middleware)
        super().__init__()

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(self.middleware):
            handler = convert_exception_to_response(import_string(path)(handler))
        self._middleware_chain = handler


def protocol_routed(pages, prefixes=PROTOCOL_PREFIXES, middleware=PROTOCOL_MIDDLEWARE):
    """A WSGI application: paths under `prefixes` to a ProtocolHandler, the rest to `pages`."""
    protocol = ProtocolHandler(middleware)
    prefixes = tuple(prefixes)

    def application(environ, start_response):
        path = environ.get("PATH_INFO", "")
        handler = protocol if path.startswith(prefixes) or path == "/v2" else pages
        return handler(environ, start_response)

    return application
