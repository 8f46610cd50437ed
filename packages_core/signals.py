"""Signal receivers; each only hands over to a service."""

from packages_core import changes
from packages_core.services.owners import ensure_user_owner


def give_new_user_an_owner(sender, instance, created, raw=False, **kwargs):
    """Every user gets an Owner, whichever way the user was made (admin, shell, command)."""
    if created and not raw:
        ensure_user_owner(instance)


def give_existing_users_owners(sender, using="default", **kwargs):
    """After `migrate`: users a host had before installing the apps get their owners too."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    for user in User._default_manager.db_manager(using).filter(package_owner__isnull=True):
        ensure_user_owner(user)


def announce_owner_change(sender, raw=False, **kwargs):
    """An owner's name or visibility decides what pulls find: copies of it must go."""
    if not raw:
        changes.changed()
