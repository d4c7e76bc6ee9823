"""``docs/spec-reference.md``: every field of a study spec, generated from the models.

The meaning of a field is written once, where the field is defined: ``Field(description=...)``,
else the comment on its line or the comment lines just above it in ``models.py``. This module
reads those comments from the source (``ast`` finds the fields, ``tokenize`` the comments), walks
the models from :class:`StudySpec` down and renders one Markdown section per model, so the
reference cannot drift from the code (``tests/unit/test_spec_reference.py`` checks it is current).

    python -m polytask.spec.reference --write docs/spec-reference.md
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import io
import json
import re
import sys
import tokenize
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from .defaults import EncoderDefaults
from .models import StudySpec, TrainingSpec

COMMAND = "python -m polytask.spec.reference --write docs/spec-reference.md"
SEE_ALSO = (  # docs/ pages that explain the settings at length, linked from the top of the reference
    ("your-own-data.md", "two raw files taken from download to report, with the mistakes validate catches"),
    ("tasks.md", "task types, data shapes, sources, encoders and the bad-data checks"),
    ("defaults.md", "the training defaults per encoder kind and how they were measured"),
    ("comparisons.md", "how the candidates are compared: selection, baselines, tuning, significance"),
    ("sharing.md", "the sharing architectures and their hyperparameters"),
    ("weighting.md", "the weighting strategies and their hyperparameters"),
)
# Fields left None in the spec and filled in per encoder kind once the data is loaded (defaults.py).
PER_ENCODER_KIND = {(TrainingSpec, f.name) for f in dataclasses.fields(EncoderDefaults) if f.name in TrainingSpec.model_fields}
BASIC_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean", Any: "any value"}
BOUNDS = ((at.Ge, "ge", "≥"), (at.Gt, "gt", ">"), (at.Le, "le", "≤"), (at.Lt, "lt", "<"))


# --------------------------------------------------------------------------- comments in the source


def field_comments(source: str) -> dict[tuple[str, str], str]:
    """``(class name, field name) -> comment text`` for every annotated field of every class in
    ``source``: the comment lines right above the field (no blank line between), then the
    comment at the end of its line(s)."""
    own_line, trailing = {}, {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            text = token.string.lstrip("#").strip()
            (own_line if token.line.lstrip().startswith("#") else trailing)[token.start[0]] = text
    comments = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for statement in node.body:
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                above, line = [], statement.lineno - 1
                while line in own_line:
                    above.insert(0, own_line[line])
                    line -= 1
                after = [trailing[n] for n in range(statement.lineno, statement.end_lineno + 1) if n in trailing]
                if above or after:
                    comments[node.name, statement.target.id] = " ".join(above + after)
    return comments


def comments_of(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> comment for ``model``, inherited fields included (read on the class that
    defines them, in its own module's source; a subclass's comment wins)."""
    found: dict[str, str] = {}
    for cls in reversed(model.__mro__[: model.__mro__.index(BaseModel)]):
        comments = _module_comments(cls.__module__)
        found.update({name: text for (owner, name), text in comments.items() if owner == cls.__name__})
    return found


@functools.cache  # each module's source is tokenized once
def _module_comments(module_name: str) -> dict[tuple[str, str], str]:
    return field_comments(inspect.getsource(sys.modules[module_name]))


# --------------------------------------------------------------------------- the models reachable from StudySpec


@dataclasses.dataclass
class Section:
    model: type[BaseModel]
    paths: list[tuple[str, tuple | None]]  # where a reader meets it: (YAML path, union tag such as ("kind", "files"))

    def where(self) -> str:
        """The paths in words: `data.source` with `kind: files`, `tasks[].source` with ..."""

        def one(path: str, tag: tuple | None) -> str:
            if not path:
                return "the top level of the spec file"
            return f"`{path}`" + (f" with `{tag[0]}: {tag[1]}`" if tag else "")

        return ", ".join(one(path, tag) for path, tag in self.paths)


def _strip(annotation: Any) -> tuple[Any, list]:
    """The type under ``Annotated[...]`` and the metadata it carried (a FieldInfo's flattened)."""
    metadata: list = []
    while get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        for item in extra:
            metadata += [item, *item.metadata] if isinstance(item, FieldInfo) else [item]
    return annotation, metadata


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _tag(model: type[BaseModel]) -> tuple[str, Any] | None:
    """``("kind", "files")`` for a model told apart in a union by a required one-value Literal field."""
    for name, info in model.model_fields.items():
        if info.is_required() and get_origin(info.annotation) is Literal and len(get_args(info.annotation)) == 1:
            return name, get_args(info.annotation)[0]
    return None


def nested_models(annotation: Any, path: str) -> list[tuple[type[BaseModel], str, tuple | None]]:
    """The models a field's type holds, each with its YAML path (``tasks[]`` for a list's items,
    ``x.<key>`` for a dict's values) and, for a member of a union of models, its tag."""
    annotation, _ = _strip(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if _is_model(annotation):
        return [(annotation, path, None)]
    if _is_union(annotation):
        members = [_strip(a)[0] for a in args if a is not type(None)]
        found = [item for member in members for item in nested_models(member, path)]
        return [(model, p, _tag(model)) for model, p, _ in found] if len(members) > 1 else found
    if origin in (list, tuple, set, frozenset):
        return [item for a in args if a is not Ellipsis for item in nested_models(a, f"{path}[]")]
    if origin is dict:
        return nested_models(args[1], f"{path}.<key>")
    return []


def sections(root: type[BaseModel] = StudySpec) -> list[Section]:
    """One section per model, depth first in field order: the order a reader of a spec file
    meets them (the top level, then ``data`` and its parts, then ``tasks``, ...)."""
    found: dict[type[BaseModel], Section] = {}

    def visit(model: type[BaseModel], path: str, tag: tuple | None) -> None:
        if model in found:  # met again elsewhere (a candidate's sharing): one section, several paths
            found[model].paths.append((path, tag))
            return
        found[model] = Section(model, [(path, tag)])
        for name, info in model.model_fields.items():
            for child, child_path, child_tag in nested_models(info.annotation, f"{path}.{name}" if path else name):
                visit(child, child_path, child_tag)

    visit(root, "", None)
    return list(found.values())


# --------------------------------------------------------------------------- one field in words


def type_words(annotation: Any, metadata: list | tuple = ()) -> str:
    """A field's type in plain words, constraints included: ``integer ≥ 1``, ``list of strings``,
    ``one of: `error`, `impute`, `drop```, ``number or null``."""
    annotation, inner = _strip(annotation)
    metadata = [*metadata, *inner]
    origin, args = get_origin(annotation), get_args(annotation)
    if _is_union(annotation):
        options = [a for a in args if a is not type(None)]
        if len(options) > 1 and all(_is_model(_strip(a)[0]) for a in options):  # the source kinds, the encoder kinds
            words = "one of: " + ", ".join(type_words(a) for a in options)
        else:  # the constraints of `int | None = Field(None, ge=1)` belong to the int
            words = " or ".join(type_words(a, metadata) for a in options)
        if len(options) < len(args):
            words += ", or null" if "," in words else " or null"
        return words
    if origin is Literal:
        return ("one of: " if len(args) > 1 else "") + ", ".join(f"`{a}`" for a in args)
    if origin in (list, set, frozenset) or (origin is tuple and args[-1:] == (Ellipsis,)):
        return f"list of {_plural(type_words(args[0]))}" + _length(metadata, "item")
    if origin is tuple:
        return f"list of {len(args)}: [" + ", ".join(type_words(a) for a in args) + "]"
    if origin is dict:
        return f"mapping of {_plural(type_words(args[0]))} to {_plural(type_words(args[1]))}" + _length(metadata, "entry")
    if _is_model(annotation):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    words = BASIC_TYPES.get(annotation, getattr(annotation, "__name__", str(annotation)))
    return words + _bounds(metadata) + (_length(metadata, "character") if annotation is str else "") + _pattern(metadata)


def _plural(words: str) -> str:
    """``integer ≥ 1`` -> ``integers ≥ 1``; a model link or a phrase stays as it is."""
    first, _, rest = words.partition(" ")
    plural = {"integer": "integers", "number": "numbers", "string": "strings", "boolean": "booleans"}
    return " ".join(filter(None, [plural.get(first, first), rest])) if first in plural else words


def _bounds(metadata: list) -> str:
    found = [f"{sign} {getattr(m, attr):g}" for m in metadata for kind, attr, sign in BOUNDS if isinstance(m, kind)]
    return " " + " and ".join(found) if found else ""


def _length(metadata: list, unit: str) -> str:
    """`` of 1 character``, ``, at least 1 item``: min_length / max_length in words."""
    low = next((m.min_length for m in metadata if isinstance(m, at.MinLen)), None)
    high = next((m.max_length for m in metadata if isinstance(m, at.MaxLen)), None)
    units = {"entry": "entries"}.get(unit, unit + "s")

    def name(n: int) -> str:
        return f"{n} {unit if n == 1 else units}"

    if low is not None and low == high:
        return f" of exactly {name(low)}"
    if low is not None and high is not None:
        return f", {low} to {name(high)}"
    if low is not None:
        return f", at least {name(low)}"
    return f", at most {name(high)}" if high is not None else ""


def _pattern(metadata: list) -> str:
    pattern = next((m.pattern for m in metadata if getattr(m, "pattern", None)), None)
    return f" matching `{pattern}`" if pattern else ""


def default_words(model: type[BaseModel], name: str, info: FieldInfo) -> str:
    """``required``, the YAML of the default, or where a None default is resolved."""
    if info.is_required():
        return "required"
    if (model, name) in PER_ENCODER_KIND and info.default is None:
        return "per encoder kind, see [docs/defaults.md](defaults.md)"
    if info.default_factory is not None:
        return "computed"
    default = info.default
    if isinstance(default, BaseModel) and default == type(default)():
        return "every field's default"  # the nested model's own section lists them
    return f"`{json.dumps(to_jsonable_python(default), ensure_ascii=False)}`"


def meaning(model: type[BaseModel], name: str, info: FieldInfo) -> str:
    """The description, else the source comment, else for a ``kind`` tag what it selects."""
    text = info.description or comments_of(model).get(name, "")
    tag = _tag(model)
    if not text and tag and tag[0] == name:  # a union member's tag needs no comment of its own
        text = f"`{name}: {tag[1]}` selects {model.__name__}"
    return text


# --------------------------------------------------------------------------- Markdown


def _markdown(text: str) -> str:
    """A tag-like ``<`` outside code spans as ``&lt;``, so <output>/tune is not read as HTML."""
    parts = text.split("`")
    return "`".join(part if i % 2 else re.sub(r"<(?=[A-Za-z/!?])", "&lt;", part) for i, part in enumerate(parts))


def _cell(text: str) -> str:
    """One table cell: one line, ``|`` escaped (it would end the cell)."""
    return _markdown(" ".join(text.split())).replace("|", "\\|")


def _intro(model: type[BaseModel]) -> str:
    """The model's own docstring (not an inherited one), reST ``code`` as Markdown `code`."""
    doc = model.__dict__.get("__doc__")
    return _markdown(inspect.cleandoc(doc).replace("``", "`")) if doc else ""


def render_section(section: Section) -> str:
    model = section.model
    lines = [f"## {model.__name__}", "", "At " + section.where() + ".", ""]
    if _intro(model):
        lines += [_intro(model), ""]
    lines += ["| Field | Type | Default | Meaning |", "| --- | --- | --- | --- |"]
    for name, info in model.model_fields.items():
        cells = [f"`{name}`", type_words(info.annotation, info.metadata), default_words(model, name, info), meaning(model, name, info)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def spec_reference() -> str:
    """The whole reference, Markdown: a header, a table of contents, one section per model."""
    found = sections()
    fields = sum(len(s.model.model_fields) for s in found)
    header = [
        "# Study spec reference",
        "",
        f"<!-- Generated by `{COMMAND}` from platform/polytask/spec/models.py; do not edit by hand. -->",
        "",
        f"Generated from the study-spec models in `platform/polytask/spec/models.py` by `{COMMAND}`.",
        "To change what a field says here, change its comment (or `Field(description=...)`) there and run the command again.",
        "",
        f"Every setting of a study spec (YAML), from the top level down: {len(found)} sections, {fields} fields.",
        "Unknown keys are errors (with a did-you-mean), so a typo never silently falls back to a default.",
        "A meaning's None is `null` in YAML. For more:",
        "",
        *[f"- [docs/{page}]({page}): {what}" for page, what in SEE_ALSO],
        "",
        "## Sections",
        "",
        *[f"- [{s.model.__name__}](#{s.model.__name__.lower()}): " + s.where() for s in found],
        "",
    ]
    return "\n".join(header) + "\n" + "\n".join(render_section(s) for s in found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m polytask.spec.reference",
        description="Print the study-spec reference (Markdown), generated from polytask/spec/models.py.",
        epilog=f"Regenerate the committed copy: {COMMAND}",
    )
    parser.add_argument("--write", metavar="PATH", type=Path, help="write the reference to PATH (e.g. docs/spec-reference.md) instead of printing it")
    args = parser.parse_args(argv)
    text = spec_reference()
    if args.write is None:
        sys.stdout.write(text)
    else:
        args.write.write_text(text, encoding="utf-8")
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
