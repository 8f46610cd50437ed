# A container word leaves packages_core: an upload session is opened for a package.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("packages_core", "0006_package_figures"),
    ]

    operations = [
        migrations.RenameField(
            model_name="blobupload",
            old_name="image",
            new_name="package_name",
        ),
    ]
