"""The one HTTP boundary to the FHIR server: client, errors, SMART auth, reads, write-back."""
