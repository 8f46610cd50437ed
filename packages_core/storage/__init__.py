"""The content store's backends, one per kind of storage, and the key names they share."""
