"""Local coordinator accounts and the sign-in throttle (used by the pages and the CLI)."""
