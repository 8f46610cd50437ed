"""OpenAPI descriptions of what drf-spectacular cannot infer: our access-token authentication.

Imported by forge/api/urls.py, so the extension is registered before a schema is built.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class AccessTokenScheme(OpenApiAuthenticationExtension):
    """`Authorization: token <t>`, or Basic with the token as the password: either one."""

    target_class = "forge.api.authentication.AccessTokenAuthentication"
    name = ["accessToken", "accessTokenBasic"]

    def get_security_requirement(self, auto_schema):
        return [{"accessToken": []}, {"accessTokenBasic": []}]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": 'An access token with the "token" prefix: `token fgt_...`.',
            },
            {
                "type": "http",
                "scheme": "basic",
                "description": "Any user name, and an access token (`fgt_...`) as the password.",
            },
        ]
