"""Errors a user can act on: every problem names where it is, what was found and the fix."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a study: ``path`` is a spec field (``candidates[2].weighting``)
    or a data location (``data: train split, column 'label', row 17``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class StudyError(Exception):
    """A study that cannot start. Raised before any trial runs; the CLI exits with code 2."""

    exit_code = 2

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        if not problems:
            raise ValueError("StudyError needs at least one problem")
        self.problems = problems
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        where = f" in {self.source}" if self.source else ""
        count = len(self.problems)
        head = f"{count} problem{'s' if count > 1 else ''}{where}:"
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])


def did_you_mean(value: Any, options: Any) -> str:
    """`` Did you mean 'x'?`` for the closest option, or nothing."""
    close = difflib.get_close_matches(str(value), list(options), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def unknown_name(kind: str, value: Any, known: Any) -> str:
    return f"unknown {kind} '{value}'.{did_you_mean(value, known)} Allowed: {', '.join(sorted(known))}"
