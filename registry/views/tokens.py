"""`/v2/token`: the realm of the Docker token flow."""

from __future__ import annotations

from django.http import HttpResponse

from registry import bearer
from registry.authentication import service_name
from registry.errors import ParameterInvalid
from registry.views.base import RegistryView, json_response


class TokenView(RegistryView):
    """`GET /v2/token`: Basic credentials (or none) in, a Bearer token out."""

    repository = False

    def get(self, request):
        self.require_site_access(request)
        identity = self.identity
        scopes = request.GET.getlist("scope")
        if not all(bearer.SCOPE_TEXT.fullmatch(scope) for scope in scopes):
            raise ParameterInvalid(
                "a scope is printable ASCII (type:name:actions, as Docker's token "
                "specification writes it)"
            )
        requested = bearer.parse_scopes(scopes)
        granted = bearer.grant(identity.user, identity.token, requested)
        issued = bearer.issue(identity.user, identity.token, granted, service=service_name(request))
        response = json_response(
            {
                "token": issued.token,
                "access_token": issued.token,
                "expires_in": issued.expires_in,
                "issued_at": issued.issued_at.isoformat().replace("+00:00", "Z"),
            }
        )
        response["Cache-Control"] = "no-store"
        return response

    def post(self, request):
        # The OAuth2 form of the endpoint; Docker falls back to GET on 404.
        return HttpResponse(status=404)
