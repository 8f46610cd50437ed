"""App config for packages_core: system checks and the user-to-owner hook."""

from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_delete, post_migrate, post_save


class PackagesCoreConfig(AppConfig):
    name = "packages_core"
    label = "packages_core"
    verbose_name = "Packages"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from packages_core import checks, lookups, signals

        checks.register()
        for sender in (settings.AUTH_USER_MODEL, "packages_core.AccessToken"):
            for signal in (post_save, post_delete):
                signal.connect(
                    lookups.forget, sender=sender, dispatch_uid=f"packages_core.forget:{sender}"
                )
        post_save.connect(
            signals.give_new_user_an_owner,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="packages_core.give_new_user_an_owner",
        )
        for signal in (post_save, post_delete):
            signal.connect(
                signals.announce_owner_change,
                sender="packages_core.Owner",
                dispatch_uid="packages_core.announce_owner_change",
            )
        from packages_core.services import webhooks

        for signal in (post_save, post_delete):
            signal.connect(
                webhooks.forget,
                sender="packages_core.Webhook",
                dispatch_uid="packages_core.forget_webhooks",
            )
        post_migrate.connect(
            signals.give_existing_users_owners,
            sender=self,
            dispatch_uid="packages_core.give_existing_users_owners",
        )
