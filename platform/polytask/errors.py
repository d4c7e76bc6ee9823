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


def closest(value: Any, options: Any) -> str | None:
    """The option ``value`` most likely meant: one equal to it but for case first, else the
    closest spelling (difflib, case-insensitively); None when nothing is close."""
    options = [str(o) for o in options]
    text = str(value)
    same_but_case = [o for o in options if o.casefold() == text.casefold() and o != text]
    if same_but_case:
        return same_but_case[0]
    folded = {o.casefold(): o for o in reversed(options)}
    close = difflib.get_close_matches(text.casefold(), list(folded), n=1)
    return folded[close[0]] if close else None


def did_you_mean(value: Any, options: Any) -> str:
    """`` Did you mean 'x'?`` for the closest option (case-insensitive matches first), or nothing."""
    close = closest(value, options)
    return f" Did you mean '{close}'?" if close else ""


LISTED = 10  # the most values a message lists


def listing(values: Any, limit: int = LISTED, quote: bool = True) -> str:
    """Values for a message, at most ``limit`` of them: ``'a', 'b', … and 1,990 more``
    (``quote=False``: ``a, b, … and 1,990 more``, for column names)."""
    values = list(values)
    shown = [repr(v) if quote else str(v) for v in values[:limit]]
    rest = len(values) - len(shown)
    return ", ".join(shown) + (f", … and {rest:,} more" if rest > 0 else "")


def unknown_name(kind: str, value: Any, known: Any) -> str:
    return f"unknown {kind} '{value}'.{did_you_mean(value, known)} Allowed: {', '.join(sorted(known))}"


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a study before its trials ended: what they had logged is kept, the
    interrupted trials are recorded as interrupted, and ``polytask resume`` continues. A
    KeyboardInterrupt, as a Ctrl-C is in Python; the CLI exits with code 130 (128 + SIGINT)."""

    exit_code = 130

    def __init__(self, output: Any, finished: int, total: int) -> None:
        self.output = output
        super().__init__(f"interrupted with {finished} of {total} trials finished; `polytask resume {output}` continues the study")
