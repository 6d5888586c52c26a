"""Fixtures of the use cases: the FHIR client tests' settings and a client that never sleeps."""

from tests.fhir.conftest import clock, fhir, make_client, settings, sleeps

__all__ = ["clock", "fhir", "make_client", "settings", "sleeps"]
