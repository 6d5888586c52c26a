"""Tests of tests/queue."""
