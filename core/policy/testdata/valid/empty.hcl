# An empty policy means the built-in defaults.
