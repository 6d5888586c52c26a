"""Tests of tests/mappings."""
