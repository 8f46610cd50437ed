"""The registry's web pages, a module per kind of page."""
