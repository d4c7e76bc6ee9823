"""Pydantic's validation errors, said the way a user reads them."""

from __future__ import annotations

import typing
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from polytask.errors import Problem, did_you_mean, listing

from .models import (
    NAME_PATTERN,
    TASK_NAME_PATTERN,
    BuiltinSource,
    CnnEncoderSpec,
    FilesSource,
    HubSource,
    PretrainedEncoder,
    RandomEncoder,
    StudySpec,
    TabularEncoderSpec,
    VitEncoderSpec,
)


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
    if kind in WRONG_TYPE and "input" in error:
        return Problem(path, _wrong_type(loc, kind, error["input"]))
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
    for model in (BuiltinSource, FilesSource, HubSource, PretrainedEncoder, RandomEncoder, TabularEncoderSpec, CnnEncoderSpec, VitEncoderSpec)
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


# pydantic error types of a value of the wrong type -> what the field takes, in words
WRONG_TYPE = {
    "model_type": "a mapping of fields",
    "model_attributes_type": "a mapping of fields",
    "dict_type": "a mapping",
    "list_type": "a list",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
}


def _found(value: Any) -> str:
    """What a YAML value is, in words: ``'three' is a string``."""
    if value is None:
        return "is empty (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} is a boolean"
    if isinstance(value, int):
        return f"{value} is an integer"
    if isinstance(value, float):
        return f"{value} is a number with a fractional part" if not value.is_integer() else f"{value} is a number"
    if isinstance(value, str):
        return f"{value!r} is a string"
    if isinstance(value, (list, tuple)):
        return f"{_flow(value)} is a list"
    if isinstance(value, dict):
        return f"{_flow(value)} is a mapping"
    return f"{value!r} is a {type(value).__name__}"


def _flow(value: Any) -> str:
    """A value as YAML flow text, shortened: ``{name: mmoe}``, ``[1, 2]``."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    text = text.removesuffix("...").strip()
    return text if len(text) <= 60 else text[:57] + "..."


def _wrong_type(loc: tuple, kind: str, value: Any) -> str:
    """``sharing: 'mmoe' is a string, but sharing takes a mapping of fields: write `sharing:
    {name: mmoe}```: what was found, what the field takes, and a way to write it."""
    field = next((str(p) for p in reversed(loc) if isinstance(p, str) and p not in TAGGED), "SPEC")
    named = field if isinstance(loc[-1], str) else f"each item of {field}"
    expected = WRONG_TYPE[kind]
    message = f"{_found(value)}, but {named} takes {expected}"
    fix = None
    if kind in ("model_type", "model_attributes_type") and not isinstance(value, dict):
        models = _models_in(_annotation_at(loc))
        fix = _wrapped(models, value)
        if fix is None and len(models) == 1:
            message += f" ({listing(models[0].model_fields, quote=False)})"
        elif fix is None and models:
            message += " with a kind (" + ", ".join(t for t, m in TAGGED.items() if m in models) + ") and its fields"
    elif kind == "list_type" and _models_in(_annotation_at(loc)):
        message += " of mappings"
    elif kind == "list_type" and not isinstance(value, (list, dict)):
        items = [part.strip() for part in value.split(",")] if isinstance(value, str) and "," in value else [value]
        fix = _flow(items)
    elif kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
        fix = _flow(str(value))
    if fix is not None and isinstance(loc[-1], str):
        return f"{message}: write `{field}: {fix}`"
    return message


def _wrapped(models: list[type[BaseModel]], value: Any) -> str | None:
    """The first mapping of one field (and a kind, for tagged models) holding ``value`` that
    validates as one of ``models``, as YAML flow text; None when none does."""
    tags = {model: next((t for t, m in TAGGED.items() if m is model), None) for model in models}
    tried = [(m, {"kind": t}) for m, t in tags.items() if t is not None and value == t]  # `encoder: random`
    for model, tag in tags.items():
        base = {"kind": tag} if tag else {}
        tried += [(model, {**base, name: value}) for name in model.model_fields if name != "kind"]
    for model, candidate in tried:
        try:
            model.model_validate(candidate)
        except ValidationError:
            continue
        return _flow(candidate)
    return None


def _annotation_at(loc: tuple) -> Any:
    """The type annotation of the field at ``loc`` inside a StudySpec (None when unknown)."""
    models: list[type[BaseModel]] = [StudySpec]
    annotation = None
    for part in loc:
        if isinstance(part, int):
            continue
        if part in TAGGED:
            models = [TAGGED[part]]
            continue
        model = next((m for m in models if part in m.model_fields), None)
        if model is None:
            return None
        annotation = model.model_fields[part].annotation
        models = _models_in(annotation)
    return annotation
