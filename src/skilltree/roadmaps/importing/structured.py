"""JSON and YAML roadmap documents: parsed safely, validated against RoadmapDoc.

A YAML alias stands for everything its anchor holds, each time it is used: a document of a
kilobyte can stand for hundreds of millions of topics (an "alias bomb"), which validation would
walk one by one for minutes and gigabytes. So before validation the document's values are
counted as validation would meet them, and a document with more than a roadmap's topics could
need (`VALUES_PER_TOPIC` per topic allowed) is refused; the count stops at that bound.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from pydantic import ValidationError

from skilltree.platform.http.problems import field_path
from skilltree.roadmaps.document import RoadmapDoc
from skilltree.roadmaps.importing.errors import RoadmapImportError
from skilltree.roadmaps.importing.model import ImportLimits, check_item_lines

MAX_REPORTED_ERRORS = 20
# Values (objects, lists, strings, numbers) a document may hold per topic it may hold: a topic
# with every field, its tags, seeds and resources is a few dozen.
VALUES_PER_TOPIC = 50


def parse_json(text: str, limits: ImportLimits | None = None) -> RoadmapDoc:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RoadmapImportError(
            f"line {error.lineno}: invalid JSON: {error.msg}", line=error.lineno
        ) from error
    except RecursionError as error:  # JSON bodies are refused earlier (platform/http/text_input)
        raise RoadmapImportError("the document is nested too deeply") from error
    return _validate(data, limits or ImportLimits())


def parse_yaml(text: str, limits: ImportLimits | None = None) -> RoadmapDoc:
    limits = limits or ImportLimits()
    check_item_lines(text, limits, "yaml")
    try:
        # safe_load builds plain data only: no arbitrary Python objects from tags. It is the
        # pure-Python loader, slower than libyaml's: libyaml's C composer crashes the process on
        # a document nested a hundred thousand levels deep, where this one raises RecursionError.
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else None
        where = f"line {line}: " if line else ""
        raise RoadmapImportError(f"{where}invalid YAML: {error.problem}", line=line) from error
    except yaml.YAMLError as error:
        raise RoadmapImportError(f"invalid YAML: {error}") from error
    except RecursionError as error:
        raise RoadmapImportError("the document is nested too deeply") from error
    return _validate(data, limits)


def _validate(data: Any, limits: ImportLimits) -> RoadmapDoc:
    if not isinstance(data, dict):
        raise RoadmapImportError("the document must be an object with 'title' and 'topics'", line=1)
    _check_values(data, limits.max_topics * VALUES_PER_TOPIC)
    try:
        return RoadmapDoc.model_validate(data)
    except ValidationError as error:
        problems = [
            f"{field_path(tuple(item['loc'])) or '(document)'}: {item['msg']}"
            for item in error.errors()[:MAX_REPORTED_ERRORS]
        ]
        raise RoadmapImportError("invalid roadmap document: " + "; ".join(problems)) from error


def _check_values(data: Any, most: int) -> None:
    """Refuse a document holding more than `most` values, an alias counted at each use."""
    count = 0
    waiting: list[Any] = [data]
    while waiting:
        value = waiting.pop()
        count += 1
        if count > most:
            raise RoadmapImportError(
                f"the document holds more than {most} values (a YAML alias counts each time "
                "it is used): more than a roadmap of this size needs"
            )
        if isinstance(value, dict):
            waiting.extend(value.values())
        elif isinstance(value, list):
            waiting.extend(value)
