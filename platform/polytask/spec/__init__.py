"""Study specs: YAML in, a validated :class:`StudySpec` out, or a :class:`StudyError` that names
each bad field, the value found and what is allowed.

``models.py`` lists every setting; ``checks.py`` checks across fields; ``pydantic_errors.py``
words pydantic's errors for users.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from polytask.errors import Problem, StudyError
from polytask.ops.credentials import spec_problems, uri_problem

from .checks import ParamError, check_spec, sharing_kwargs, weighting_kwargs
from .defaults import resolve_training
from .models import (
    IMAGE_ENCODERS,
    TEXT_ENCODERS,
    BuiltinSource,
    CandidateSpec,
    CnnEncoderSpec,
    ComparisonSpec,
    DataSpec,
    EncoderSpec,
    FilesSource,
    HubSource,
    PretrainedEncoder,
    RandomEncoder,
    SearchSpec,
    StudySpec,
    TabularEncoderSpec,
    TaskSpec,
    TuningSpec,
    VitEncoderSpec,
    describe_source,
)
from .pydantic_errors import problem_from_pydantic


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a study spec; raise :class:`StudyError` listing every problem."""
    path = Path(path)
    if not path.is_file():
        raise StudyError([Problem("SPEC", f"no such spec file: {path}; give the path of a study spec (YAML), e.g. studies/quickstart.yaml")])
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        reason = getattr(exc, "problem", None) or str(exc)
        raise StudyError([Problem(where, f"not valid YAML: {reason}; fix the syntax there (quote values holding ':', close every [ and {{)")], str(path)) from None
    return parse_spec(raw, source=str(path), base_dir=path.parent)


def with_overrides(spec: StudySpec, storage: str | None = None, tracking_uri: str | None = None) -> StudySpec:
    """The spec with command-line settings in place (``--storage``, ``--tracking-uri``), so the
    resolved spec a study saves says where its results went."""
    if storage is not None:
        spec = spec.model_copy(update={"execution": spec.execution.model_copy(update={"storage": storage})})
    if tracking_uri is not None:
        spec = spec.model_copy(update={"tracking": spec.tracking.model_copy(update={"uri": tracking_uri})})
    problems = uri_problem("--storage", storage) + uri_problem("--tracking-uri (or MLFLOW_TRACKING_URI)", tracking_uri)
    if problems:  # a password saved with the spec would leak (polytask.ops.credentials)
        raise StudyError(problems)
    return spec


def parse_spec(raw: Any, source: str | None = None, base_dir: Path | None = None) -> StudySpec:
    if not isinstance(raw, dict):
        found = "an empty file" if raw is None else f"a {type(raw).__name__} ({str(raw)[:40]!r})"
        raise StudyError([Problem("SPEC", f"is {found}, not a mapping of fields; write `name: ...`, `data: ...`, `tasks: ...` at the top level (see studies/quickstart.yaml)")], source)
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as exc:
        raise StudyError([problem_from_pydantic(e) for e in exc.errors()], source) from None
    problems = check_spec(spec) + spec_problems(spec)  # spec_problems: no passwords in URIs (polytask.ops.credentials)
    if problems:
        raise StudyError(problems, source)
    if base_dir is not None:
        spec = _resolve_paths(spec, base_dir)
    return spec


def _resolve_paths(spec: StudySpec, base_dir: Path) -> StudySpec:
    """File sources' paths made absolute, relative to the spec file's folder."""

    def resolved(source):
        if not isinstance(source, FilesSource):
            return source
        paths = {split: str((base_dir / value).resolve()) if value is not None else None for split, value in (("train", source.train), ("validation", source.validation), ("test", source.test))}
        return source.model_copy(update=paths)

    data = spec.data.model_copy(update={"source": resolved(spec.data.source)})
    tasks = [t.model_copy(update={"source": resolved(t.source)}) for t in spec.tasks]
    return spec.model_copy(update={"data": data, "tasks": tasks})


__all__ = [
    "IMAGE_ENCODERS",
    "TEXT_ENCODERS",
    "BuiltinSource",
    "CandidateSpec",
    "CnnEncoderSpec",
    "DataSpec",
    "EncoderSpec",
    "FilesSource",
    "HubSource",
    "ParamError",
    "PretrainedEncoder",
    "RandomEncoder",
    "SearchSpec",
    "ComparisonSpec",
    "TuningSpec",
    "StudySpec",
    "TabularEncoderSpec",
    "TaskSpec",
    "VitEncoderSpec",
    "check_spec",
    "describe_source",
    "load_spec",
    "with_overrides",
    "parse_spec",
    "resolve_training",
    "sharing_kwargs",
    "weighting_kwargs",
]
