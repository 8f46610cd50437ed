"""The forge site's web pages: owners, images, versions, settings."""
