"""Webhook secrets sealed under SECRET_KEY (packages_core/sealed.py) instead of kept in clear."""

from django.db import migrations, models

from packages_core import sealed


def seal_secrets(apps, schema_editor):
    Webhook = apps.get_model("packages_core", "Webhook")
    for webhook in Webhook.objects.exclude(secret=""):
        webhook.sealed_secret = sealed.seal(webhook.secret)
        webhook.save(update_fields=["sealed_secret"])


def open_secrets(apps, schema_editor):
    Webhook = apps.get_model("packages_core", "Webhook")
    for webhook in Webhook.objects.exclude(sealed_secret=""):
        webhook.secret = sealed.unseal(webhook.sealed_secret)
        webhook.save(update_fields=["secret"])


class Migration(migrations.Migration):
    dependencies = [
        ("packages_core", "0009_version_last_pulled_cleanup_unpulled"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhook",
            name="sealed_secret",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.RunPython(seal_secrets, open_secrets),
        migrations.RemoveField(model_name="webhook", name="secret"),
    ]
