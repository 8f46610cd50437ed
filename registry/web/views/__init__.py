"""The forge site's web pages, a module per kind of page."""
