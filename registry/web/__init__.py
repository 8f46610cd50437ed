"""The registry's optional web pages (and, under api/, its REST API)."""
