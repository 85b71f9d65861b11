"""The JSON schema subset that tool input is checked against before a tool runs."""
import pytest

from lab.agents.schema import check_schema, violations
from lab.agents.tools import TOOLS

READ = {"type": "object", "required": ["path"], "additionalProperties": False,
        "properties": {"path": {"type": "string"}, "offset": {"type": "integer", "minimum": 1},
                       "wait_s": {"type": "number", "minimum": 0, "maximum": 60}}}


def test_every_tool_schema_uses_only_what_is_enforced():
    for tool in TOOLS:
        check_schema(tool["input_schema"], tool["name"])
    with pytest.raises(ValueError, match=r"x.path: unsupported JSON schema keywords \['pattern'\]"):
        check_schema({"type": "object", "properties": {"path": {"type": "string", "pattern": "^a"}}}, "x")
    with pytest.raises(ValueError, match="unknown type 'int'"):
        check_schema({"type": "int"})


def test_valid_input_has_no_violations():
    assert violations(READ, {"path": "a.py"}) == []
    assert violations(READ, {"path": "a.py", "offset": 3, "wait_s": 2.5}) == []
    assert violations(READ, {"path": "a.py", "offset": 3.0}) == []          # JSON: 3.0 is an integer


@pytest.mark.parametrize("value, expected", [
    ({"offset": 2}, ["path: missing (required)"]),
    ({"path": "a", "offset": "10"}, ["offset: expected an integer, got the string '10'"]),
    ({"path": "a", "offset": 1.5}, ["offset: expected an integer, got the number 1.5"]),
    ({"path": "a", "offset": True}, ["offset: expected an integer, got true"]),
    ({"path": "a", "offset": 0}, ["offset: 0 is below the minimum 1"]),
    ({"path": "a", "wait_s": 61}, ["wait_s: 61 is above the maximum 60"]),
    ({"path": "a", "wait_s": float("nan")}, ["wait_s: expected a number, got the number nan"]),
    ({"path": None, "colour": "red"}, ["path: expected a string, got null",
                                       "colour: unknown field (expected: path, offset, wait_s)"]),
    (["a"], ["the arguments: expected an object, got an array"]),
])
def test_each_violation_names_its_field(value, expected):
    assert violations(READ, value) == expected


def test_nested_fields_unions_enums_and_items():
    schema = {"type": "object", "properties": {
        "metrics": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
        "value": {"type": "integer", "enum": [1, -1]},
        "seeds": {"type": "array", "items": {"type": "integer", "minimum": 0}}}}
    assert violations(schema, {"metrics": {"pgr": 0.3, "se": None}, "value": -1, "seeds": [0, 1]}) == []
    assert violations(schema, {"metrics": {"pgr": "high"}, "value": 2, "seeds": [0, -1, "x"]}) == [
        "metrics.pgr: expected a number or null, got the string 'high'",
        "value: the number 2 is not one of 1, -1",
        "seeds[1]: -1 is below the minimum 0",
        "seeds[2]: expected an integer, got the string 'x'"]
    assert violations({"enum": [1]}, True) == ["the arguments: true is not one of 1"]   # true is not 1
