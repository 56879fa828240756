"""The study tools' output shapes (API.md), validated with pydantic; also sent to the model as JSON Schema."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class Output(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Summary(Output):
    summary: Text
    keyPoints: list[Short] = Field(min_length=1, max_length=20)


class Question(Output):
    question: Short
    options: list[Short] = Field(min_length=4, max_length=4)
    answerIndex: int = Field(ge=0, le=3)
    explanation: Text


class Quiz(Output):
    questions: list[Question] = Field(min_length=1, max_length=50)


class Card(Output):
    front: Short
    back: Text


class Flashcards(Output):
    cards: list[Card] = Field(min_length=1, max_length=100)


class Node(Output):
    title: Short
    children: list[Node] = Field(default_factory=list, max_length=12)


class MindMap(Output):
    root: Node

    @model_validator(mode="after")
    def bounded(self) -> MindMap:
        def walk(node: Node, depth: int) -> int:
            if depth > 5:
                raise ValueError("the mind map is deeper than 5 levels")
            return 1 + sum(walk(child, depth + 1) for child in node.children)

        if walk(self.root, 1) > 150:
            raise ValueError("the mind map has more than 150 nodes")
        return self


SCHEMAS: dict[str, type[Output]] = {
    "summarize": Summary,
    "quiz": Quiz,
    "flashcards": Flashcards,
    "mindmap": MindMap,
}

EXAMPLES = {
    "summarize": '{"summary": "...", "keyPoints": ["...", "..."]}',
    "quiz": '{"questions": [{"question": "...", "options": ["...", "...", "...", "..."], "answerIndex": 0, '
    '"explanation": "..."}]}',
    "flashcards": '{"cards": [{"front": "...", "back": "..."}]}',
    "mindmap": '{"root": {"title": "...", "children": [{"title": "...", "children": []}]}}',
}


_UNBOUNDED = {"maxLength", "title", "default"}
_NAMED = {"properties", "$defs", "patternProperties"}


def grammar_schema(model: type[Output]) -> dict[str, Any]:
    """The model's JSON Schema without upper bounds, for servers that compile it into a grammar.

    llama.cpp expands ``maxLength``/``maxItems`` into nested optional rules, which for a few
    hundred characters exceeds its grammar limits; large bounds are enforced by validation instead.
    """

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for k, v in node.items():
                if k in _UNBOUNDED or (k == "maxItems" and isinstance(v, int) and v > 8):
                    continue
                # ``properties`` and ``$defs`` map names to schemas: a name is never a keyword, so
                # a property called ``title`` stays (the mind map's nodes have one).
                out[k] = {n: strip(sub) for n, sub in v.items()} if k in _NAMED and isinstance(v, dict) else strip(v)
            return out
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    schema: dict[str, Any] = strip(model.model_json_schema())
    return schema
