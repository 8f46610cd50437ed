"""A WSGI front that sends the registry protocol through a short middleware stack.

A pull is a handful of small requests; sessions, messages, CSRF, clickjacking and a
site's own middleware each cost every one of them a little and give the protocol
nothing (it authenticates each request itself). A host site wraps its application:

    application = protocol_routed(get_wsgi_application())

and `/v2` requests go through `PROTOCOL_MIDDLEWARE` only, everything else through
`settings.MIDDLEWARE` as before.
"""

from __future__ import annotations

from functools import wraps

from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIHandler
from django.utils.module_loading import import_string

from registry.errors import API_VERSION, API_VERSION_HEADER, error_for_status, render_error

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
    Django builds it for such middleware, except that an exception is answered in the
    spec's error format rather than with the site's HTML error pages.
    """

    def __init__(self, middleware=PROTOCOL_MIDDLEWARE):
        self.middleware = tuple(middleware)
        super().__init__()

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_oci_error(self._get_response)
        for path in reversed(self.middleware):
            handler = convert_exception_to_oci_error(import_string(path)(handler))
        self._middleware_chain = handler


def convert_exception_to_oci_error(get_response):
    """Django's convert_exception_to_response, answering in the spec's JSON.

    The views answer their own errors (registry/views/base.py); this is for what
    happens around them. Django's handling still decides the status and logs (a 500
    with its traceback, to `django.request`); only the body is the protocol's own.
    """

    @wraps(get_response)
    def inner(request):
        try:
            return get_response(request)
        except Exception as exc:
            status = response_for_exception(request, exc).status_code
            response = render_error(error_for_status(status), head=request.method == "HEAD")
            response[API_VERSION_HEADER] = API_VERSION
            return response

    return inner


def protocol_routed(pages, prefixes=PROTOCOL_PREFIXES, middleware=PROTOCOL_MIDDLEWARE):
    """A WSGI application: paths under `prefixes` to a ProtocolHandler, the rest to `pages`
    (a 400 for a NUL in their address); the answer to a HEAD never has a body.
    """
    protocol = ProtocolHandler(middleware)
    prefixes = tuple(prefixes)

    def application(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(prefixes) or path == "/v2":
            handler = protocol
        elif "\x00" in path or "%00" in environ.get("QUERY_STRING", ""):
            # The protocol's views check names before any query; the pages are many, and
            # the admin's filters take any value: no text column holds a NUL, and on
            # PostgreSQL asking for one is an error (a 500) rather than no rows.
            return _refused(environ, start_response)
        else:
            handler = pages
        result = handler(environ, start_response)
        if environ.get("REQUEST_METHOD") == "HEAD":
            return _NoBody(result)
        return result

    return application


def _refused(environ, start_response):
    body = b"Bad Request: the address holds a NUL character.\n"
    start_response(
        "400 Bad Request",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


class _NoBody:
    """The answer to a HEAD, whatever the view gave: its headers, and no body.

    WSGI servers (gunicorn among them) send the body an application returns, and on a
    kept-alive connection the client reads it as the start of the next response.
    Closing is passed on, so Django still finishes the request (request_finished).
    """

    def __init__(self, result):
        self._result = result

    def __iter__(self):
        return iter(())

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            close()
