"""Signing in to the pages (Django's view, with refusals logged), and signing up where
the site allows it (`REGISTRY["ALLOW_SIGNUP"]`).
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth import authenticate, login
from django.contrib.auth import views as auth_views
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from packages_core.client_address import client_address
from packages_core.exceptions import PackagesError
from packages_core.services import owners
from registry.conf import registry_settings
from registry.web.forms import SignUpForm

logger = logging.getLogger(__name__)


class LoginView(auth_views.LoginView):
    template_name = "registry/web/login.html"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "signup_allowed": signup_allowed()}

    def form_invalid(self, form):
        # Django logs no failed sign-in; an operator chasing guessing needs one line each.
        username = form.data.get("username", "")
        logger.info("pages: sign-in of %r from %s refused", username, client_address(self.request))
        return super().form_invalid(form)


def signup_allowed() -> bool:
    return registry_settings.ALLOW_SIGNUP is True


@require_http_methods(["GET", "POST"])
def signup(request):
    """Make an account (a user and its owner, through the owners service) and sign in.

    404 unless the site allows it: no page tells that sign-up exists where it does not.
    """
    if not signup_allowed():
        raise Http404("This site does not offer sign-up.")
    if request.user.is_authenticated:
        return redirect("registry_web:home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        username, password = form.cleaned_data["username"], form.cleaned_data["password1"]
        try:
            owners.create_user(username, email=form.cleaned_data["email"], password=password)
        except PackagesError as exc:
            form.add_error("username", str(exc))
        else:
            logger.info("pages: %r signed up from %s", username, client_address(request))
            # Through the authentication backends, as a sign-in would: one that refuses
            # the new user (a host's policy) leaves them to sign in later.
            user = authenticate(request, username=username, password=password)
            if user is None:
                messages.success(request, f"Made the account {username}; sign in to go on.")
                return redirect("registry_web:login")
            login(request, user)
            messages.success(request, f"Welcome, {username}: your account is ready.")
            return redirect("registry_web:home")
    return render(request, "registry/web/signup.html", {"form": form})
