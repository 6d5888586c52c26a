"""Shared test helpers: import as tests.support.NAME."""
