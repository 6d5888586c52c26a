"""Tests of tests/web."""
