"""Each study tool's grammar (the JSON Schema the model is constrained by) against its output model.

A grammar that drops or renames a property makes every answer of that tool invalid: the model can
only produce what the grammar allows, and validation then refuses it.
"""

from __future__ import annotations

from typing import Any

import pytest

from collabry.engine.tasks.schemas import SCHEMAS, grammar_schema


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = root["$defs"][name]
    return schema


def _minimal(schema: dict[str, Any], root: dict[str, Any], depth: int = 0) -> Any:
    """The smallest instance the grammar allows: what a terse model would produce."""
    schema = _resolve(schema, root)
    kind = schema.get("type")
    if "anyOf" in schema:
        return _minimal(schema["anyOf"][0], root, depth)
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _minimal(props[name], root, depth + 1) for name in schema.get("required", [])}
    if kind == "array":
        count = schema.get("minItems", 0)
        return [_minimal(schema["items"], root, depth + 1) for _ in range(count)]
    if kind == "string":
        return "x" * max(1, schema.get("minLength", 1))
    if kind == "integer":
        return schema.get("minimum", 0)
    if kind == "number":
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    raise AssertionError(f"unexpected schema {schema}")


def _objects(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            found.append((path, schema))
        for key, value in schema.items():
            found.extend(_objects(value, f"{path}/{key}"))
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            found.extend(_objects(value, f"{path}/{i}"))
    return found


@pytest.mark.parametrize("tool", sorted(SCHEMAS))
def test_grammar_keeps_every_property_of_the_output(tool):
    model = SCHEMAS[tool]
    full = dict(_objects(model.model_json_schema()))
    grammar = dict(_objects(grammar_schema(model)))
    assert full.keys() == grammar.keys()
    for path, obj in full.items():
        assert set(grammar[path].get("properties", {})) == set(obj.get("properties", {})), (tool, path)
        assert grammar[path].get("required") == obj.get("required"), (tool, path)
        assert set(grammar[path].get("required", [])) <= set(grammar[path].get("properties", {})), (tool, path)


@pytest.mark.parametrize("tool", sorted(SCHEMAS))
def test_an_answer_the_grammar_allows_is_a_valid_output(tool):
    model = SCHEMAS[tool]
    schema = grammar_schema(model)
    instance = _minimal(schema, schema)
    model.model_validate(instance)  # raises if the grammar lets the model omit a required field


def test_grammar_drops_only_bounds_and_annotations():
    schema = grammar_schema(SCHEMAS["mindmap"])
    text = repr(schema)
    assert "maxLength" not in text and "'default'" not in text
    node = schema["$defs"]["Node"]
    assert "title" not in {k for k in node if k != "properties"}  # the annotation went
    assert node["properties"]["title"]["type"] == "string"  # the field stayed
