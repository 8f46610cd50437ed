"""Helpers for tests against a real S3 API: moto's server, buckets, SigV4 checks."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import uuid
from urllib.parse import parse_qsl, quote, urlsplit

from tests.ci import unavailable

S3_REGION = "us-east-1"
S3_ACCESS_KEY = "forge-test-access-key"
S3_SECRET_KEY = "forge-test-secret-key"


def require_moto():
    """moto's ThreadedMotoServer; skip without it, fail in CI (CI=true)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        unavailable(
            f"moto's server mode is not installed ({exc}); install it with: "
            ".venv/bin/pip install -r requirements-dev.txt (moto[server])",
            "a missing S3 test server",
        )
    return ThreadedMotoServer


def start_moto():
    """moto's S3 API server on a free loopback port: (server, endpoint URL)."""
    server_class = require_moto()
    # Its request log would drown a failing test's output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Port 0: the system picks a free port when the server binds, so no race.
    server = server_class(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def s3_client(endpoint: str):
    """A boto3 S3 client on the test server, for setting up and asserting."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=S3_REGION,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def make_bucket(client) -> str:
    """A new, empty bucket with a unique name."""
    name = f"forge-test-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    return name


def bucket_keys(client, bucket: str, prefix: str = "") -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(entry["Key"] for page in pages for entry in page.get("Contents", []))


def drop_bucket(client, name: str) -> None:
    """Empty and delete a bucket (moto keeps everything in memory); best effort."""
    with contextlib.suppress(Exception):
        for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
            client.abort_multipart_upload(
                Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        for key in bucket_keys(client, name):
            client.delete_object(Bucket=name, Key=key)
        client.delete_bucket(Bucket=name)


def s3_env(endpoint: str, bucket: str, **extra: str) -> dict[str, str]:
    """The forge site's environment variables for FORGE_STORAGE=s3 on the test server."""
    return {
        "FORGE_STORAGE": "s3",
        "FORGE_S3_BUCKET": bucket,
        "FORGE_S3_ENDPOINT_URL": endpoint,
        "FORGE_S3_REGION": S3_REGION,
        "FORGE_S3_ACCESS_KEY": S3_ACCESS_KEY,
        "FORGE_S3_SECRET_KEY": S3_SECRET_KEY,
        **extra,
    }


def sigv4_signature_is_valid(url: str, method: str, secret_key: str = S3_SECRET_KEY) -> bool:
    """Whether a presigned URL's SigV4 query signature holds for `method`, as S3 checks it.

    moto does not check signatures, so the tests do.
    """
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    signature = params.pop("X-Amz-Signature")
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        return False
    signed_headers = params["X-Amz-SignedHeaders"]
    if signed_headers != "host":
        raise AssertionError(f"only host is expected among the signed headers: {signed_headers}")

    def encode(value: str) -> str:
        return quote(value, safe="-_.~")

    canonical_query = "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(params.items()))
    canonical_request = "\n".join(
        [method, parts.path, canonical_query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    _access_key, scope = params["X-Amz-Credential"].split("/", 1)
    day, region, service, _terminator = scope.split("/")
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            params["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)
