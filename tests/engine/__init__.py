"""Table-driven tests of the screening engine against criteria.md, both studies."""
