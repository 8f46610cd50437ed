"""WSGI entry point of the example host site; the protocol takes the short middleware stack."""

import os

from django.core.wsgi import get_wsgi_application

from registry.wsgi import protocol_routed

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hostsite.settings")
application = protocol_routed(get_wsgi_application())
