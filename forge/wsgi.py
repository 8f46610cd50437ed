"""WSGI entry point: gunicorn serves `forge.wsgi:application`.

Requests for the registry protocol (`/v2`) and the operators' probes (`/-/healthz`,
`/-/readyz`, `/-/metrics`) go through a handler with only the middleware they use
(registry/wsgi.py): no sessions, messages, CSRF or static files, each of which costs
every pull a little. The pages, the API and the admin get the whole stack, the pages
under `/-/` (settings, new organisations, sign-up) included: they need the session.
"""

import os

from django.core.wsgi import get_wsgi_application

from registry.wsgi import PROTOCOL_PREFIXES, protocol_routed

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "forge.settings")

PROBES = ("/-/healthz", "/-/readyz", "/-/metrics")

application = protocol_routed(get_wsgi_application(), prefixes=(*PROTOCOL_PREFIXES, *PROBES))
