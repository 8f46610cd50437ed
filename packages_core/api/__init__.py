"""The REST API for packages, under /api/v1/ (Django REST framework)."""
