"""Pydantic's validation errors, said the way a user reads them."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel

from polytask.errors import Problem, did_you_mean

from .models import NAME_PATTERN, TASK_NAME_PATTERN, BuiltinSource, FilesSource, HubSource, PretrainedEncoder, RandomEncoder, StudySpec


def problem_from_pydantic(error: dict[str, Any]) -> Problem:
    """One pydantic error as a Problem: the field's path, what is wrong, the fix."""
    loc = error["loc"]
    path = _format_loc(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        field = str(loc[-1])
        allowed = _fields_at(loc[:-1])
        return Problem(path, f"unknown field '{field}'.{did_you_mean(field, allowed)} Allowed here: {', '.join(allowed)}")
    if kind == "missing":
        return Problem(path, "required field is missing; add it")
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        expected = error.get("ctx", {}).get("expected_tags", "")
        return Problem(f"{path}.kind", f"kind must be one of {expected}; got {error.get('input', {}).get('kind') if isinstance(error.get('input'), dict) else error.get('input')!r}")
    message = error["msg"]
    if kind == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") in PATTERNS:
        return Problem(path, f"{error.get('input')!r} is not {PATTERNS[error['ctx']['pattern']]}; rename it")
    if kind == "value_error":  # our validators' messages already quote the value
        return Problem(path, message.removeprefix("Value error, "))
    return Problem(path, f"{message} (got {error.get('input')!r})")


# What a name pattern allows, in words. Study and candidate names become folder and file
# names (runs/<name>, <storage>/<name>-<run>), so they are one path component: no '/', no '..'.
PATTERNS = {
    NAME_PATTERN: "a name polytask can use as a folder name: letters, digits, '_', '.' and '-', starting with a letter or digit (no '/', no '..')",
    TASK_NAME_PATTERN: "a task name: letters, digits and '_', starting with a letter",
}

# The models pydantic tells apart by their `kind` (its error locations include the kind).
TAGGED: dict[str, type[BaseModel]] = {
    typing.get_args(model.model_fields["kind"].annotation)[0]: model
    for model in (BuiltinSource, FilesSource, HubSource, PretrainedEncoder, RandomEncoder)
}


def _format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in TAGGED:  # a kind is not a field the user wrote
            out += f".{part}" if out else str(part)
    return out


def _fields_at(loc: tuple) -> list[str]:
    """The field names allowed at ``loc`` inside a StudySpec, for did-you-mean hints."""
    models: list[type[BaseModel]] = [StudySpec]
    for part in loc:
        if isinstance(part, int):
            continue
        if part in TAGGED and TAGGED[part] in models:
            models = [TAGGED[part]]
        elif len(models) == 1 and part in models[0].model_fields:
            models = _models_in(models[0].model_fields[part].annotation)
        else:
            return []
    return list(models[0].model_fields) if len(models) == 1 else []


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (through Optional, Union, list, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]
