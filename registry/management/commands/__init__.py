"""The registry's manage.py commands: createmirror."""
