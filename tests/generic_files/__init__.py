"""A second package type, made for the tests: generic files, on packages_core alone."""
