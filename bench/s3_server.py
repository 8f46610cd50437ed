"""A local S3 API server (moto) with one bucket, for benchmarking the registry on S3.

    .venv/bin/python bench/s3_server.py --port 9000 --bucket forge-bench

It runs until interrupted. Point the registry at it with FORGE_STORAGE=s3,
FORGE_S3_ENDPOINT_URL=http://127.0.0.1:9000, FORGE_S3_BUCKET=forge-bench,
FORGE_S3_ACCESS_KEY=bench, FORGE_S3_SECRET_KEY=bench, FORGE_S3_REGION=us-east-1.
moto keeps objects in memory and is written in Python: its figures show the
registry's overhead on the S3 path, not what a real object store would do.
"""

import argparse
import contextlib
import signal
import threading

import boto3
from moto.server import ThreadedMotoServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--bucket", default="forge-bench")
    args = parser.parse_args()

    server = ThreadedMotoServer(ip_address=args.host, port=args.port)
    server.start()
    endpoint = f"http://{args.host}:{args.port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    ).create_bucket(Bucket=args.bucket)
    print(f"S3 at {endpoint}, bucket {args.bucket}; Ctrl-C stops it.", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
