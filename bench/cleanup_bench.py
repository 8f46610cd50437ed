"""How fast `cleanup_packages` frees what deleted images left: rules, then garbage collection.

Fills a fresh site (a temporary data dir; SQLite unless DATABASE_URL is set) with
images pushed through the registry's services, each a config, two layers of its own
and one shared layer, deletes most of their tags, then times a dry run and a real run
of the cleanup with no grace period, and a second run that finds nothing.

    .venv/bin/python bench/cleanup_bench.py --images 2000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/forge_bench \
        .venv/bin/python bench/cleanup_bench.py

The PostgreSQL database named must exist and be empty (it is migrated here).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup(data_dir: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["FORGE_DATA_DIR"] = data_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "forge.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def fill(images: int, keep: int) -> tuple[int, int]:
    """Push `images` images, delete all but `keep` of them; (blobs, bytes) made."""
    from packages_core.models import PackageBlob
    from packages_core.services.blobs import store_blob
    from packages_core.services.owners import create_user
    from registry import images as registry

    user = create_user("bench", password="bench-pw", email="bench@example.com")
    owner = user.package_owner
    shared = os.urandom(4096)
    for number in range(images):
        repo = f"app{number % 20}"
        config = json.dumps({"architecture": "amd64", "os": "linux", "n": number}).encode()
        layers = [os.urandom(2048), os.urandom(1024), shared]
        for blob in (config, *layers):
            store_blob(io.BytesIO(blob), claim=registry.staging_claim(owner, repo, creator=user))
        registry.put_manifest(owner, repo, f"v{number}", manifest(config, layers), None)
        if number >= keep:
            registry.delete_manifest(owner, repo, f"v{number}")
    blobs = PackageBlob.objects.count()
    return blobs, sum(PackageBlob.objects.values_list("size", flat=True))


def manifest(config: bytes, layers: list[bytes]) -> bytes:
    def descriptor(media_type: str, data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [
                descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer) for layer in layers
            ],
        }
    ).encode()


def timed(label: str, **kwargs) -> dict:
    from packages_core.services.cleanup import run_cleanup

    started = time.perf_counter()
    report = run_cleanup(grace=timedelta(0), **kwargs)
    seconds = time.perf_counter() - started
    print(f"{label:<10} {seconds:7.2f} s  {report.summary(dry_run=kwargs.get('dry_run', False))}")
    return {"seconds": round(seconds, 3), "blobs": report.blobs, "bytes": report.bytes_freed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--keep", type=int, default=50, help="images left tagged")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cleanup-bench-") as data_dir:
        setup(data_dir)
        from django.db import connection

        started = time.perf_counter()
        blobs, size = fill(args.images, args.keep)
        print(
            f"filled     {time.perf_counter() - started:7.2f} s  {args.images} images "
            f"({args.keep} kept), {blobs} blobs, {size} bytes on {connection.vendor}"
        )
        figures = {
            "database": connection.vendor,
            "images": args.images,
            "kept": args.keep,
            "dry_run": timed("dry run", dry_run=True),
            "cleanup": timed("cleanup"),
            "again": timed("again"),
        }
        figures["blobs_per_second"] = round(
            figures["cleanup"]["blobs"] / figures["cleanup"]["seconds"]
        )
        print(f"{figures['blobs_per_second']} blobs collected per second")
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
