"""Property tests: arbitrary, malformed or absurd resources never crash the engine."""

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.core.settings import REPO_ROOT
from service.engine.evaluate import evaluate_patient
from service.engine.record import RecordError
from service.mappings import load_mappings
from tests.support.examples import examples

MAPPINGS = load_mappings(REPO_ROOT / "mappings")
CODES = [t.split("|", 1) for t in MAPPINGS.observation_codes()] + [
    ["http://snomed.info/sct", "55464009"], ["http://snomed.info/sct", "36402006"],
    ["http://snomed.info/sct", "48426002"], ["http://www.nlm.nih.gov/research/umls/rxnorm", "8640"],
    ["http://www.nlm.nih.gov/research/umls/rxnorm", "68442"], ["http://loinc.org", ""],
]
junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
dates = st.one_of(
    st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 1, 1)).map(date.isoformat),
    st.sampled_from(["2026", "2026-02", "2026-13-40", "", "yesterday", "2026-11-15T10:00:00Z"]),
    junk,
)
units = st.sampled_from(["g/dL", "g/L", "10*3/uL", "/uL", "umol/L", "mg/dL", "IU/L", "%",
                         "bogus", "", "{score}", "mL/min/{1.73_m2}", "cm", "[in_i]", "kg", "mg"])
numbers = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                    st.decimals(allow_nan=False, allow_infinity=False).map(str), junk)
coding = st.builds(lambda sc: {"system": sc[0], "code": sc[1]}, st.sampled_from(CODES))
concept = st.one_of(st.builds(lambda c: {"coding": [c]}, coding), junk)
quantity = st.one_of(st.fixed_dictionaries(
    {"value": numbers, "code": units}, optional={"comparator": st.sampled_from(["<", ">", "ab"])}
), junk)
ref = st.sampled_from([{"reference": "Patient/p"}, {"reference": "Patient/other"}, None, "x"])
status = st.sampled_from(["final", "amended", "entered-in-error", "preliminary", "active",
                          "completed", None, 3])

observation = st.fixed_dictionaries(
    {"resourceType": st.just("Observation"), "code": concept, "subject": ref, "status": status},
    optional={"id": st.text(max_size=5), "effectiveDateTime": dates, "valueQuantity": quantity,
              "valueString": st.one_of(st.text(max_size=10), st.just("1:160"), junk),
              "valueRatio": junk, "referenceRange": st.one_of(junk, st.lists(
                  st.fixed_dictionaries({"high": quantity}), max_size=2)),
              "valueCodeableConcept": concept, "valueBoolean": junk},
)
condition = st.fixed_dictionaries(
    {"resourceType": st.just("Condition"), "code": concept, "subject": ref},
    optional={"id": st.text(max_size=5), "onsetDateTime": dates, "clinicalStatus": junk,
              "verificationStatus": junk},
)
medication = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["MedicationRequest", "MedicationStatement",
                                      "MedicationAdministration"]),
     "medicationCodeableConcept": concept, "subject": ref, "status": status},
    optional={"authoredOn": dates, "effectivePeriod": st.fixed_dictionaries(
        {}, optional={"start": dates, "end": dates}), "effectiveDateTime": dates,
        "dosageInstruction": junk, "dosage": junk, "dispenseRequest": junk,
        "medicationReference": junk, "contained": junk, "intent": junk},
)
other = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["Procedure", "DiagnosticReport", "AllergyIntolerance",
                                      "Consent", "Medication", "Encounter"]),
     "code": concept, "subject": ref},
    optional={"performedDateTime": dates, "effectiveDateTime": dates, "status": status,
              "conclusionCode": junk, "result": junk, "policy": junk, "patient": ref,
              "dateTime": dates, "ingredient": junk, "reaction": junk},
)
patient = st.fixed_dictionaries(
    {"resourceType": st.just("Patient"), "id": st.just("p")},
    optional={"birthDate": dates, "gender": st.sampled_from(["male", "female", "other", 3])},
)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patient, st.lists(st.one_of(observation, condition, medication, other), max_size=25),
       st.dates(min_value=date(1990, 1, 1), max_value=date(2040, 1, 1)))
def test_engine_never_raises_and_stays_in_three_values(pat, resources, as_of):
    try:
        evaluation = evaluate_patient([pat, *resources], MAPPINGS, as_of, strict=True)
    except RecordError as err:
        # The one error allowed: a resource shaped like STU3/R5, said clearly.
        assert "not FHIR R4" in str(err)
        return
    for study in evaluation.studies:
        assert study.status in ("eligible", "potential-candidate", "ineligible")
        for crit in study.criteria:
            assert crit.result in ("met", "not-met", "unknown")
            assert crit.reason
            crit.to_json()


@settings(max_examples=examples(60), deadline=None)
@given(st.sampled_from(["bogus", "mmol", "kg", "{cells}", "[ft_i]"]),
       st.decimals(min_value=0, max_value=1000, places=2))
def test_unconvertible_unit_is_unknown(unit, value):
    resources = [
        {"resourceType": "Patient", "id": "p", "birthDate": "2014-01-01", "gender": "male"},
        {"resourceType": "Observation", "id": "hb", "status": "final",
         "subject": {"reference": "Patient/p"},
         "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
         "effectiveDateTime": "2026-11-01", "valueQuantity": {"value": float(value), "code": unit}},
    ]
    evaluation = evaluate_patient(resources, MAPPINGS, date(2026, 11, 15), ["pediatric-ln-cart"],
                                  strict=True)
    hb = next(c for c in evaluation.studies[0].criteria if c.id == "hemoglobin")
    assert hb.result == "unknown"
    assert "cannot be converted" in hb.reason


def test_the_order_resources_arrive_in_never_changes_a_result():
    """Two results of one concept on one day: the same one decides whichever the server sent
    first (a HAPI read and an in-memory read of one record gave different lymphocytes)."""
    from datetime import date

    from service.core.settings import REPO_ROOT
    from service.engine.evaluate import evaluate_patient
    from service.mappings import load_mappings

    mappings = load_mappings(REPO_ROOT / "mappings")
    patient = {"resourceType": "Patient", "id": "p", "birthDate": "2015-01-01",
               "gender": "female"}

    def lymphocytes(oid: str, when: str, value: str) -> dict:
        return {"resourceType": "Observation", "id": oid, "status": "final",
                "subject": {"reference": "Patient/p"}, "effectiveDateTime": when,
                "code": {"coding": [{"system": "http://loinc.org", "code": "731-0"}]},
                "valueQuantity": {"value": float(value), "unit": "10*9/L",
                                  "system": "http://unitsofmeasure.org", "code": "10*9/L"}}

    low = lymphocytes("a", "2026-11-10T08:00:00Z", "0.5")
    high = lymphocytes("b", "2026-11-10T16:00:00Z", "1.5")
    results = set()
    for order in ([patient, low, high], [patient, high, low]):
        evaluation = evaluate_patient(order, mappings, date(2026, 11, 15), ["pediatric-ln-cart"],
                                      patient_id="p")
        crit = {c.id: c for c in evaluation.studies[0].criteria}["lymphocytes"]
        results.add((crit.result, crit.evidence))
    assert results == {("met", ("Observation/b",))}  # the later one, the same both ways
