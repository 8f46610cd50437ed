"""The type-agnostic package domain: owners, tokens, packages, versions, blobs, storage."""
