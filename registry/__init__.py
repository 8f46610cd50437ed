"""The OCI Distribution / Docker Registry v2 protocol, mounted at /v2."""
