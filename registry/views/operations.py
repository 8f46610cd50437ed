"""For operators: liveness and readiness probes, and Prometheus metrics."""

from __future__ import annotations

from django.http import HttpResponse, HttpResponseNotFound, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from packages_core.credentials import parse_basic
from registry import health, metrics
from registry.conf import registry_settings


@never_cache
@require_safe
def liveness(request):
    """`/-/healthz`: the process answers requests; nothing else is asked."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readiness(request):
    """`/-/readyz`: 200 when the database, the storage and the shared cache all answer,
    else 503; each check's result and time in the body.
    """
    results = health.readiness()
    ready = all(result.ok for result in results)
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": {
            result.name: {"ok": result.ok, "ms": round(result.milliseconds, 2)}
            for result in results
        },
    }
    return JsonResponse(body, status=200 if ready else 503)


@never_cache
@require_safe
def metrics_view(request):
    """`/-/metrics`: Prometheus' text format, for a scraper that presents
    REGISTRY["METRICS_TOKEN"] as a Bearer token (or as the Basic password); off
    (404) while no token is set.
    """
    expected = registry_settings.METRICS_TOKEN
    if not expected:
        return HttpResponseNotFound("metrics are off; set REGISTRY['METRICS_TOKEN']\n")
    if not constant_time_compare(_presented_token(request), expected):
        response = HttpResponse("a valid metrics token is required\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    output, content_type = metrics.exposition()
    return HttpResponse(output, content_type=content_type)


def _presented_token(request) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    credentials = parse_basic(header)
    return credentials[1] if credentials else ""
