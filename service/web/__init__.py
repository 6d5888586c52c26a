"""The HTTP surfaces: app factory, one blueprint per surface, problems, auth."""
