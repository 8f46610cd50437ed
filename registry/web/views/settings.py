"""A signed-in user's settings: personal access tokens."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from packages_core.exceptions import PackagesError
from packages_core.models import AccessToken
from packages_core.services.tokens import create_access_token, revoke_token
from registry.web import browse
from registry.web.forms import AccessTokenForm


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request):
    """The user's tokens, and the form that creates one.

    A created token's secret is rendered in the answer to the POST and nowhere
    else: not kept in the session, a cookie or the database, so it shows once.
    """
    form = AccessTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            token, secret = create_access_token(
                request.user,
                form.cleaned_data["name"],
                form.cleaned_data["scopes"],
                expires_in_days=form.cleaned_data["expires_in_days"],
            )
        except PackagesError as exc:
            form.add_error(None, str(exc))
        else:
            context = {
                "token": token,
                "secret": secret,
                "registry_host": browse.registry_host(request),
            }
            response = render(request, "registry/web/token_created.html", context)
            add_never_cache_headers(response)
            return response
    context = {
        "form": form,
        "tokens": AccessToken.objects.filter(user=request.user).order_by("-created", "-pk"),
    }
    return render(request, "registry/web/settings_tokens.html", context)


@login_required
@require_POST
def revoke(request, token_id):
    """Revoke one of the user's own tokens; anyone else's is 404."""
    token = get_object_or_404(AccessToken, pk=token_id, user=request.user)
    if token.revoked_at is None:
        revoke_token(token)
        messages.success(request, f"Revoked the token “{token.name}”.")
    return redirect("registry_web:settings_tokens")
