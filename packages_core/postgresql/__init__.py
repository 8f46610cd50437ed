"""A PostgreSQL database backend whose connection health check costs no round trip."""
