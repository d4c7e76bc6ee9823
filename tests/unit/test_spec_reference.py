"""docs/spec-reference.md is generated from the study-spec models: it is current, it lists every
field of every model a spec can hold, and it shows each field's comment, default and constraints."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import get_args

from pydantic import BaseModel

from polytask.spec import models
from polytask.spec.models import DataSpec, FilesSource, SearchSpec, SplitSpec, StudySpec, TaskSpec, TrainingSpec
from polytask.spec.reference import COMMAND, main, spec_reference

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "spec-reference.md"


def reachable(root: type[BaseModel]) -> list[type[BaseModel]]:
    """Every model a spec can hold, found from the annotations alone (not with the module's walk)."""

    def models_in(annotation) -> list[type[BaseModel]]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [annotation]
        return [m for arg in get_args(annotation) for m in models_in(arg)]

    seen, todo = [], [root]
    while todo:
        model = todo.pop()
        if model not in seen:
            seen.append(model)
            todo += [m for info in model.model_fields.values() for m in models_in(info.annotation)]
    return seen


def section(doc: str, model: type[BaseModel]) -> str:
    heading = f"\n## {model.__name__}\n"
    assert heading in doc, f"no section for {model.__name__}"
    return doc.split(heading, 1)[1].split("\n## ", 1)[0]


def row(doc: str, model: type[BaseModel], field: str) -> str:
    rows = [line for line in section(doc, model).splitlines() if line.startswith(f"| `{field}` |")]
    assert len(rows) == 1, f"{model.__name__}.{field}: {len(rows)} rows"
    return rows[0]


def source_comment(cls: type, field: str) -> str:
    """A field's comment as models.py spells it (the lines above it, then its line's), read
    line by line from the class's own source."""
    lines = inspect.getsource(cls).splitlines()
    at = next(i for i, line in enumerate(lines) if line.lstrip().startswith(f"{field}:"))
    above = []
    for line in reversed(lines[:at]):
        if not line.lstrip().startswith("#"):
            break
        above.insert(0, line.strip().lstrip("#").strip())
    trailing = lines[at].split("  # ", 1)[1:] if "  # " in lines[at] else []
    return " ".join(above + trailing)


def test_committed_doc_is_current():
    assert DOC.read_text(encoding="utf-8") == spec_reference(), (
        f"{DOC.relative_to(REPO)} is out of date with polytask/spec/models.py; regenerate it: .venv/bin/{COMMAND}"
    )


def test_every_field_of_every_reachable_model_has_a_row():
    doc = DOC.read_text(encoding="utf-8")
    found = reachable(StudySpec)
    assert {DataSpec, FilesSource, SearchSpec, SplitSpec, TrainingSpec, models.VitEncoderSpec, models.TuningSpec} <= set(found)
    for model in found:
        for field in model.model_fields:
            row(doc, model, field)


def test_source_comments_are_the_meanings():
    doc = spec_reference()
    for cls, model, field in [
        (TaskSpec, TaskSpec, "metric"),  # a comment at the end of the line
        (TrainingSpec, TrainingSpec, "gradient_method"),  # comment lines above the field
        (DataSpec, DataSpec, "missing"),  # a block of several lines
        (models._SourceCommon, FilesSource, "columns"),  # inherited from a base class
    ]:
        comment = source_comment(cls, field)
        assert len(comment) > 10, (cls.__name__, field, comment)
        assert comment in row(doc, model, field), f"{model.__name__}.{field}: {comment!r} not in its row"


def test_defaults_and_constraints_are_rendered():
    doc = spec_reference()
    trials = row(doc, SearchSpec, "trials")  # Field(ge=1), no default
    assert "integer ≥ 1" in trials and "| required |" in trials
    assert f"`{TrainingSpec.model_fields['batch_size'].default}`" in row(doc, TrainingSpec, "batch_size")
    assert "number > 0 and < 0.5" in row(doc, SplitSpec, "validation")
    assert "one of: `error`, `impute`, `drop`" in row(doc, DataSpec, "missing")
    assert "string of exactly 1 character or null" in row(doc, FilesSource, "comment")
    for field in ("learning_rate", "epochs"):  # None in the spec, resolved per encoder kind
        assert "per encoder kind, see [docs/defaults.md]" in row(doc, TrainingSpec, field)


def test_command_writes_the_reference(tmp_path, capsys):
    assert main(["--write", str(tmp_path / "ref.md")]) == 0
    assert (tmp_path / "ref.md").read_text(encoding="utf-8") == spec_reference()
    assert main([]) == 0
    assert capsys.readouterr().out.endswith(spec_reference())
