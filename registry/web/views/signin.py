"""Signing in to the pages: Django's view, with refusals logged."""

from __future__ import annotations

import logging

from django.contrib.auth import views as auth_views

from packages_core.client_address import client_address

logger = logging.getLogger(__name__)


class LoginView(auth_views.LoginView):
    template_name = "registry/web/login.html"

    def form_invalid(self, form):
        # Django logs no failed sign-in; an operator chasing guessing needs one line each.
        username = form.data.get("username", "")
        logger.info("pages: sign-in of %r from %s refused", username, client_address(self.request))
        return super().form_invalid(form)
