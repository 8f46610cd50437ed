"""Template tags and filters of the registry's web pages."""
