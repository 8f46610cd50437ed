"""The host's own accounts: people sign in with their email address."""
