"""The bundled host site: settings from the environment, root URLs and web pages."""
