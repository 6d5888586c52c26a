"""Tests of tests/localfhir."""
