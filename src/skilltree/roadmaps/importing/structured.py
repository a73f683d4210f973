"""JSON and YAML roadmap documents: parsed safely, validated against RoadmapDoc."""

from __future__ import annotations

import json
from typing import Any

import yaml
from pydantic import ValidationError

from skilltree.platform.http.problems import field_path
from skilltree.roadmaps.document import RoadmapDoc
from skilltree.roadmaps.importing.errors import RoadmapImportError

MAX_REPORTED_ERRORS = 20


def parse_json(text: str) -> RoadmapDoc:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RoadmapImportError(
            f"line {error.lineno}: invalid JSON: {error.msg}", line=error.lineno
        ) from error
    except RecursionError as error:  # JSON bodies are refused earlier (platform/http/text_input)
        raise RoadmapImportError("the document is nested too deeply") from error
    return _validate(data)


def parse_yaml(text: str) -> RoadmapDoc:
    try:
        # safe_load builds plain data only: no arbitrary Python objects from tags.
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else None
        where = f"line {line}: " if line else ""
        raise RoadmapImportError(f"{where}invalid YAML: {error.problem}", line=line) from error
    except yaml.YAMLError as error:
        raise RoadmapImportError(f"invalid YAML: {error}") from error
    except RecursionError as error:
        raise RoadmapImportError("the document is nested too deeply") from error
    return _validate(data)


def _validate(data: Any) -> RoadmapDoc:
    if not isinstance(data, dict):
        raise RoadmapImportError("the document must be an object with 'title' and 'topics'", line=1)
    try:
        return RoadmapDoc.model_validate(data)
    except ValidationError as error:
        problems = [
            f"{field_path(tuple(item['loc'])) or '(document)'}: {item['msg']}"
            for item in error.errors()[:MAX_REPORTED_ERRORS]
        ]
        raise RoadmapImportError("invalid roadmap document: " + "; ".join(problems)) from error
