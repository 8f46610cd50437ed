"""IndexChild: the manifests each index lists, filled from the indexes' recorded metadata."""

import django.db.models.deletion
from django.db import migrations, models

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


def fill(apps, schema_editor):
    """One row per digest each stored index lists, a sha512 one named by its sha256."""
    Manifest = apps.get_model("registry", "Manifest")
    IndexChild = apps.get_model("registry", "IndexChild")
    PackageBlob = apps.get_model("packages_core", "PackageBlob")
    rows = Manifest.objects.filter(media_type__in=INDEX_TYPES).values_list(
        "pk", "package_id", "file__version__metadata"
    )
    for index_id, package_id, metadata in rows.iterator():
        listed = metadata.get("manifests") if isinstance(metadata, dict) else None
        digests = set()
        for child in listed if isinstance(listed, list) else []:
            digest = child.get("digest") if isinstance(child, dict) else None
            if not isinstance(digest, str):
                continue
            if digest.startswith("sha512:"):
                sha256 = (
                    PackageBlob.objects.filter(sha512=digest[len("sha512:") :])
                    .values_list("sha256", flat=True)
                    .first()
                )
                if sha256 is None:
                    continue
                digest = f"sha256:{sha256}"
            digests.add(digest)
        IndexChild.objects.bulk_create(
            IndexChild(index_id=index_id, package_id=package_id, digest=digest)
            for digest in sorted(digests)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("packages_core", "0007_upload_package_name"),
        ("registry", "0002_manifest_package_index_covered"),
    ]

    operations = [
        migrations.CreateModel(
            name="IndexChild",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("digest", models.CharField(max_length=200)),
                (
                    "index",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="children",
                        to="registry.manifest",
                    ),
                ),
                (
                    "package",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="packages_core.package",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["package", "digest"], name="registry_indexchild_digest")
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("index", "digest"), name="registry_indexchild_unique"
                    )
                ],
            },
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
