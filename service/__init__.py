"""Trial eligibility service: screens FHIR patient records against CAR-T lupus trials."""
