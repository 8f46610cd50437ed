"""End-to-end tests: real clients (skopeo, podman, oras-py) against a live registry."""
