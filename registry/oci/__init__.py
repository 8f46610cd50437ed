"""Pure OCI knowledge: digests, names, media types, manifests and config metadata.

Nothing here imports Django or speaks HTTP, so it can be used (and tested) on its
own. Its errors are its own (`registry.oci.errors`); the /v2 views map them to the
distribution spec's codes and statuses (`registry.errors.from_domain`).
"""
