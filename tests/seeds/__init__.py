"""Tests of tests/seeds."""
