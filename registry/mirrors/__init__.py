"""Pull-through caches: owners whose images come from an upstream registry (docs/mirrors.md)."""
