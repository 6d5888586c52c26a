"""Tests of tests/fhir."""
