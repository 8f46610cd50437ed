"""Prometheus metrics of the package domain (exposed by the registry's /-/metrics)."""

from prometheus_client import Counter

REHASHED_BYTES = Counter(
    "packages_upload_rehashed_bytes_total",
    "Staged upload bytes hashed a second time to finish an upload with no usable hash "
    "state (a sha512 digest, a state under another secret key, no OpenSSL binding).",
)
