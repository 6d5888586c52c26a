"""The `eligibility` command line."""
