"""A Django site that is not forge: it installs the registry apps from their wheel."""
