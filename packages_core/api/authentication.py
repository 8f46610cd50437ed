"""API authentication with access tokens: `Authorization: token <t>`, or Basic with the
token as the password (what the registry accepts too).
"""

import logging

from rest_framework import authentication, exceptions

from packages_core.client_address import client_address
from packages_core.credentials import parse_basic
from packages_core.services.tokens import authenticate_token, looks_like_token

logger = logging.getLogger(__name__)


class AccessTokenAuthentication(authentication.BaseAuthentication):
    keyword = "token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == self.keyword:
            secret = value.strip()
        elif scheme.lower() == "basic":
            credentials = parse_basic(header)
            if credentials is None or not looks_like_token(credentials[1]):
                return None  # a password: Basic with a password is not an API credential
            secret = credentials[1]
        else:
            return None
        token = authenticate_token(secret)
        if token is None:
            # Never the secret, not even its start: a log is read by more people than
            # may use the token.
            logger.info("api: access token refused from %s", client_address(request))
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked access token.")
        return token.user, token

    def authenticate_header(self, request):
        return 'Token realm="api"'
