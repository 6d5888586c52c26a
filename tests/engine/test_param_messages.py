"""What the registry says about a wrong parameter, word for word, and how it registers a rule.

The loader puts these messages after the file and key (`study.toml: criteria[3].params.x: ...`),
so a mapping's author reads them as they are: each is asserted whole here, not by a fragment.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from service.engine.model import Concept
from service.engine.registry import (
    Param,
    ParamError,
    at_most_listed,
    needs,
    one_of,
    ordered,
    together,
)
from service.engine.rules import RULES

CONCEPTS = {
    "hb": Concept(name="hb", kind="observation", codes=frozenset(), unit="g/L"),
    "ana": Concept(name="ana", kind="observation", codes=frozenset()),
    "sle": Concept(name="sle", kind="condition", codes=frozenset()),
}
OBS = ("observation",)


def _part(item, index):
    return (index, item)


REFUSED = [
    # numbers
    ("int-bool", Param("int", minimum=0, maximum=9), True, "expected an integer, got True"),
    ("int-float", Param("int", minimum=0, maximum=9), 1.5, "expected an integer, got 1.5"),
    ("dec-bool", Param("decimal", minimum=0), False, "expected a number, got False"),
    ("dec-list", Param("decimal", minimum=0), [1], "expected a number, got [1]"),
    ("dec-none", Param("decimal", minimum=0), None, "expected a number, got None"),
    ("dec-word", Param("decimal", minimum=0), "five", "'five' is not a number"),
    ("dec-inf", Param("decimal", minimum=0), "Infinity", "'Infinity' is not a finite number"),
    ("dec-zero", Param("decimal", positive=True), "0", "0 must be above 0"),
    ("dec-neg", Param("decimal", positive=True), -1, "-1 must be above 0"),
    ("int-low", Param("int", minimum=2, maximum=9), 1, "1 is below the minimum 2"),
    ("int-high", Param("int", minimum=2, maximum=9), 10, "10 is above the maximum 9"),
    # strings
    ("str-int", Param("str"), 3, "expected a string"),
    ("str-choice", Param("str", choices=("a", "b")), "c", "must be one of a, b"),
    ("strs-str", Param("strs"), "a", "expected a non-empty list of strings"),
    ("strs-empty", Param("strs"), [], "expected a non-empty list of strings"),
    ("strs-mixed", Param("strs"), ["a", 1], "expected a non-empty list of strings"),
    ("strs-choice", Param("strs", choices=("a", "b")), ["a", "x", "y"],
     "'x' is not one of a, b"),
    # concepts
    ("concept-int", Param("concept", kinds=OBS), 1, "unknown concept 1"),
    ("concept-kind", Param("concept", kinds=("observation", "procedure")), "sle",
     "concept 'sle' is a condition; this rule takes observation or procedure concepts"),
    ("concept-unit", Param("concept", kinds=OBS, needs_unit=True), "ana",
     "concept 'ana' has no canonical unit"),
    ("concepts-str", Param("concepts", kinds=OBS), "hb",
     "expected a non-empty list of concept names"),
    ("concepts-empty", Param("concepts", kinds=OBS), [],
     "expected a non-empty list of concept names"),
    ("concepts-unknown", Param("concepts", kinds=OBS), ["hb", "x"], "unknown concept 'x'"),
    # pairs
    ("pairs-dict", Param("pairs", minimum=0, maximum=9), {"a": 1},
     "expected a list of [score, equivalent] integer pairs"),
    ("pairs-three", Param("pairs", minimum=0, maximum=9), [[1, 2, 3]],
     "expected a list of [score, equivalent] integer pairs"),
    ("pairs-one", Param("pairs", minimum=0, maximum=9), [[1]],
     "expected a list of [score, equivalent] integer pairs"),
    ("pairs-flat", Param("pairs", minimum=0, maximum=9), [1, 2],
     "expected a list of [score, equivalent] integer pairs"),
    ("pairs-bool", Param("pairs", minimum=0, maximum=9), [[1, True]],
     "expected a list of [score, equivalent] integer pairs"),
    ("pairs-float", Param("pairs", minimum=0, maximum=9), [[1.5, 2]],
     "expected a list of [score, equivalent] integer pairs"),
    ("pairs-high", Param("pairs", minimum=0, maximum=9), [[1, 2], [3, 10]],
     "10 is above the maximum 9"),
    # agents
    ("agents-dict", Param("agents", kinds=OBS), {"name": "x", "concepts": ["hb"]},
     "expected a list of {name, concepts} tables"),
    ("agents-empty", Param("agents", kinds=OBS), [], "expected a list of {name, concepts} tables"),
    ("agents-str", Param("agents", kinds=OBS), ["hb"],
     "[0]: expected a table with name and concepts"),
    ("agents-extra", Param("agents", kinds=OBS),
     [{"name": "a", "concepts": ["hb"]}, {"name": "b", "concepts": ["hb"], "x": 1}],
     "[1]: expected a table with name and concepts"),
    ("agents-name-int", Param("agents", kinds=OBS), [{"name": 1, "concepts": ["hb"]}],
     "[0].name: expected a non-empty string"),
    ("agents-name-empty", Param("agents", kinds=OBS), [{"name": "", "concepts": ["hb"]}],
     "[0].name: expected a non-empty string"),
    ("agents-concepts-str", Param("agents", kinds=OBS), [{"name": "a", "concepts": "hb"}],
     "[0].concepts: expected a non-empty list of concept names"),
    ("agents-concepts-empty", Param("agents", kinds=OBS),
     [{"name": "a", "concepts": ["hb"]}, {"name": "b", "concepts": []}],
     "[1].concepts: expected a non-empty list of concept names"),
    ("agents-concept-kind", Param("agents", kinds=OBS), [{"name": "a", "concepts": ["sle"]}],
     "[0].concepts: concept 'sle' is a condition; this rule takes observation concepts"),
    # nested criteria
    ("parts-str", Param("criteria", minimum=1), "x", "expected criteria tables ([[criteria.of]])"),
    ("parts-empty", Param("criteria", minimum=1), [], "expected criteria tables ([[criteria.of]])"),
    ("parts-few", Param("criteria", minimum=2), [{}], "1 part(s); at least 2 needed"),
    ("parts-many", Param("criteria", minimum=1, maximum=2), [{}, {}, {}],
     "3 parts; at most 2 allowed"),
]


@pytest.mark.parametrize(("param", "value", "message"), [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_a_wrong_parameter_is_refused_in_these_words(param, value, message):
    with pytest.raises(ParamError) as refused:
        param.parse(value, CONCEPTS, _part)
    assert str(refused.value) == message


def test_nested_criteria_without_the_loader_are_refused_in_these_words():
    with pytest.raises(ParamError) as refused:
        Param("criteria", minimum=1).parse([{}], CONCEPTS)
    assert str(refused.value) == "nested criteria need the mapping loader"


@pytest.mark.parametrize(("param", "value", "parsed"), [
    (Param("strs", choices=("a", "b")), ["b", "a"], ("b", "a")),
    (Param("strs"), ["anything"], ("anything",)),
    (Param("str", choices=("a", "b")), "b", "b"),
    (Param("str"), "free", "free"),
    (Param("decimal", positive=True), 1.25, Decimal("1.25")),
    (Param("int", minimum=2, maximum=9), 9, 9),
    (Param("criteria", minimum=1), {"rule": "x"}, ((0, {"rule": "x"}),)),
    (Param("criteria", minimum=1, maximum=2), [{"a": 1}, {"b": 2}],
     ((0, {"a": 1}), (1, {"b": 2}))),
    (Param("agents", kinds=OBS), [{"name": "a", "concepts": ["hb", "ana"]}, {"name": "b",
                                                                          "concepts": ["ana"]}],
     (("a", ("hb", "ana")), ("b", ("ana",)))),
    (Param("concepts"), ["sle", "hb"], ("sle", "hb")),
    (Param("pairs", minimum=0, maximum=9), [], ()),
])
def test_a_right_parameter_is_read_so(param, value, parsed):
    assert param.parse(value, CONCEPTS, _part) == parsed


@pytest.mark.parametrize(("check", "params", "problem"), [
    (ordered("low", "high"), {"low": 5, "high": 4}, ("low", "5 is above high = 4")),
    (ordered("low", "high"), {"low": 4, "high": 4}, None),
    (ordered("low", "high"), {"low": 5}, None),
    (ordered("low", "high"), {"high": 5}, None),
    (together("a", "b", "c"), {"b": 1}, ("a", "required together with b")),
    (together("a", "b", "c"), {"a": 1, "b": 1}, ("c", "required together with a")),
    (together("a", "b"), {"a": 1, "b": 1}, None),
    (together("a", "b"), {}, None),
    (one_of("a", "b"), {}, ("a", "one of a, b is required")),
    (one_of("a", "b"), {"b": 1}, None),
    (needs("a", "b", "c"), {"a": 1, "b": 1}, ("c", "required together with a")),
    (needs("a", "b", "c"), {"a": 1}, ("b", "required together with a")),
    (needs("a", "b"), {"b": 1}, None),
    (needs("a", "b"), {"a": 1, "b": 1}, None),
    (at_most_listed("n", "items"), {"n": 3, "items": ("x", "y")},
     ("n", "3 is more than the 2 items listed")),
    (at_most_listed("n", "items", "agents"), {"n": 3, "items": ("x", "y")},
     ("n", "3 is more than the 2 agents listed")),
    (at_most_listed("n", "items"), {"n": 2, "items": ("x", "y")}, None),
    (at_most_listed("n", "items"), {"n": 3}, None),
    (at_most_listed("n", "items"), {"items": ()}, None),
])
def test_a_check_across_parameters_says_which_key_and_why(check, params, problem):
    assert check(params) == problem


def test_every_rule_is_registered_with_its_own_name_doc_and_checks():
    for name, spec in RULES.items():
        assert spec.name == name
        assert spec.doc == (spec.evaluate.__doc__ or "").strip() != ""
        assert isinstance(spec.checks, tuple) and all(callable(c) for c in spec.checks)
        assert spec.check({}) is None or isinstance(spec.check({})[1], str)
    # the checks a rule declares are the ones it runs
    assert RULES["age"].check({}) == ("min_years", "one of min_years, max_years is required")
    assert RULES["age"].check({"min_years": 9, "max_years": 8}) == (
        "min_years", "9 is above max_years = 8")
    assert RULES["event"].check({"grade": ("x",)}) == ("min_grade", "required together with grade")


def test_only_a_persons_answer_is_a_verdict_and_only_absence_is_negated():
    # A manual confirmation and a consent are the criterion's verdict as given; an exclusion
    # does not turn them around. `absence` already says "none of these".
    assert {n for n, s in RULES.items() if s.verdict} == {"manual", "consent"}
    assert {n for n, s in RULES.items() if s.negated} == {"absence"}
