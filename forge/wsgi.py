"""WSGI entry point: gunicorn serves `forge.wsgi:application`.

Requests for the registry protocol (`/v2`) and the operators' probes (`/-/`) go through
a handler with only the middleware they use: no sessions, messages, CSRF or static
files, each of which costs every pull a little. The pages, the API and the admin get
the whole stack.
"""

import os

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application
from django.utils.module_loading import import_string

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "forge.settings")

# Security headers (HSTS, SSL redirect) and ALLOWED_HOSTS (CommonMiddleware checks
# the host) apply to the protocol as to the pages.
PROTOCOL_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
PROTOCOL_PREFIXES = ("/v2/", "/-/")


class ProtocolHandler(WSGIHandler):
    """Django's WSGI handler with PROTOCOL_MIDDLEWARE instead of settings.MIDDLEWARE.

    Those two only take requests and responses (no view, template or exception
    hooks), so the chain is built as Django builds it for such middleware.
    """

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(PROTOCOL_MIDDLEWARE):
            handler = convert_exception_to_response(import_string(path)(handler))
        self._middleware_chain = handler


def route(pages, protocol):
    def application(environ, start_response):
        path = environ.get("PATH_INFO", "")
        handler = protocol if path.startswith(PROTOCOL_PREFIXES) or path == "/v2" else pages
        return handler(environ, start_response)

    return application


application = route(get_wsgi_application(), ProtocolHandler())
