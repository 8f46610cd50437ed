"""Packages keep their figures: published versions, and bytes of their distinct blobs."""

from django.db import migrations, models
from django.db.models import Exists, OuterRef, Sum


def count_figures(apps, schema_editor):
    """Work the figures out once for the packages there are (services/figures.py keeps
    them from now on).
    """
    Package = apps.get_model("packages_core", "Package")
    PackageVersion = apps.get_model("packages_core", "PackageVersion")
    PackageFile = apps.get_model("packages_core", "PackageFile")
    PackageBlob = apps.get_model("packages_core", "PackageBlob")
    for package_id in Package.objects.values_list("pk", flat=True).iterator():
        versions = PackageVersion.objects.filter(package_id=package_id, is_internal=False)
        uses = PackageFile.objects.filter(
            package_id=package_id, blob_id=OuterRef("pk"), version__is_internal=False
        )
        size = PackageBlob.objects.filter(Exists(uses)).aggregate(total=Sum("size"))["total"]
        Package.objects.filter(pk=package_id).update(version_count=versions.count(), size=size or 0)


class Migration(migrations.Migration):
    dependencies = [
        ("packages_core", "0005_file_package"),
    ]

    operations = [
        migrations.AddField(
            model_name="package",
            name="size",
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="package",
            name="version_count",
            field=models.IntegerField(default=0, editable=False),
        ),
        migrations.RunPython(count_figures, migrations.RunPython.noop, elidable=True),
    ]
