"""How this site's users become registry owners: `alice@example.com` pushes to `alice/...`."""

from packages_core.adapter import AccessAdapter


class EmailAccessAdapter(AccessAdapter):
    """Gitea's access rules, with owner names taken from the local part of the email."""

    def owner_name_for_user(self, user) -> str:
        return self.valid_owner_name(user.email.partition("@")[0], user)
