"""The /v2 endpoints: each parses the request, calls a service and builds the response."""
