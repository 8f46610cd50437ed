"""Template filters of the forge site's pages."""
