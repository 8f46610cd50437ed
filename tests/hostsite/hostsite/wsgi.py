"""WSGI entry point of the example host site."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hostsite.settings")
application = get_wsgi_application()
