"""Signal receivers; each only hands over to a service."""

from packages_core.services.owners import ensure_user_owner


def give_new_user_an_owner(sender, instance, created, raw=False, **kwargs):
    """Every user gets an Owner, whichever way the user was made (admin, shell, command)."""
    if created and not raw:
        ensure_user_owner(instance)
