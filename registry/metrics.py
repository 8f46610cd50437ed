"""Prometheus metrics of the /v2 protocol: requests, latency, bytes, uploads, storage errors.

Kept with prometheus-client. Under gunicorn every worker is a process of its own, so
the server sets PROMETHEUS_MULTIPROC_DIR before forking (gunicorn.conf.py) and each
worker writes its samples to files there; a scrape, answered by any worker, adds them
up. Without that variable (a single-process server, tests) the samples live in the
process's memory.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# From a cached manifest HEAD (~1 ms) to a layer push of minutes.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

REQUESTS = Counter(
    "registry_http_requests_total",
    "Requests to /v2, by route (the URL name), method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "registry_http_request_duration_seconds",
    "Time from a /v2 request's arrival to its response (body excluded), by route and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
BYTES_RECEIVED = Counter(
    "registry_http_request_bytes_total",
    "Request body bytes read by /v2 views (blobs, chunks, manifests), by route.",
    ["route"],
)
BYTES_SENT = Counter(
    "registry_http_response_bytes_total",
    "Body bytes of /v2 responses sent by the server itself (not redirects), by route.",
    ["route"],
)
STORAGE_ERRORS = Counter(
    "registry_storage_errors_total",
    "Requests that failed on the content store (disk or object storage), by route.",
    ["route"],
)


def route_of(request) -> str:
    """The label of a request's route: its URL name."""
    match = getattr(request, "resolver_match", None)
    return (match.url_name if match is not None else "") or "unknown"


class UploadsCollector:
    """Upload sessions open right now, counted in the database when scraped (so every
    worker and node reports the same figure).
    """

    def collect(self):
        from packages_core.models import BlobUpload

        family = GaugeMetricFamily(
            "registry_uploads_in_progress", "Blob upload sessions started and not yet finished."
        )
        family.add_metric([], BlobUpload.objects.count())
        yield family


def exposition() -> tuple[bytes, str]:
    """The current samples in Prometheus' text format, and its content type."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROCESS_ENV):
        MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    output = generate_latest(registry)
    uploads = CollectorRegistry()
    uploads.register(UploadsCollector())
    return output + generate_latest(uploads), CONTENT_TYPE_LATEST
