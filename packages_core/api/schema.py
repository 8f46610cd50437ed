"""The API's OpenAPI schema: only this API's views, and our access-token authentication.

Imported by packages_core/api/urls.py, so the extension is registered before a schema is built.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator

from packages_core.services import tokens


class ApiEndpoints(EndpointEnumerator):
    """This API's views alone: a host's other DRF views (and drf-spectacular's own) are
    not ours to describe, and need not use drf-spectacular's AutoSchema.
    """

    def should_include_endpoint(self, path, callback):
        view = getattr(callback, "cls", None)
        return (
            view is not None
            and view.__module__.startswith("packages_core.api.")
            and super().should_include_endpoint(path, callback)
        )


class ApiSchemaGenerator(SchemaGenerator):
    endpoint_inspector_cls = ApiEndpoints


class AccessTokenScheme(OpenApiAuthenticationExtension):
    """`Authorization: token <t>`, or Basic with the token as the password: either one."""

    target_class = "packages_core.api.authentication.AccessTokenAuthentication"
    name = ["accessToken", "accessTokenBasic"]

    def get_security_requirement(self, auto_schema):
        return [{"accessToken": []}, {"accessTokenBasic": []}]

    def get_security_definition(self, auto_schema):
        secret = f"{tokens.TOKEN_PREFIX}..."
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": f'An access token with the "token" prefix: `token {secret}`.',
            },
            {
                "type": "http",
                "scheme": "basic",
                "description": f"Any user name, and an access token (`{secret}`) as the password.",
            },
        ]
