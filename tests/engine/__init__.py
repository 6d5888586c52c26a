"""Table-driven tests of the screening engine against docs/decisions.md, both studies."""
