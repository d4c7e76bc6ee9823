"""A study's output folder: checked before anything starts (:func:`check_output_folder`), then
made and, with ``--overwrite``, cleared of an earlier study's results (:func:`make_output_folder`).
Each failure is a :class:`StudyError` naming ``output``, the folder and the fix.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from polytask.errors import Problem, StudyError
from polytask.schema import REPORT_FILES, SPEC_FILE, STUDY_FILE

# Room a study needs in its output folder before it starts: the MLflow store (SQLite, about
# 1 MiB empty), the report and, by default, the trials' checkpoints under tune/.
MIN_FREE_BYTES = 8 * 2**20
RESULT_FILES = (STUDY_FILE, SPEC_FILE, *REPORT_FILES)  # what --overwrite removes (earlier MLflow runs are kept)
FIX = "choose another folder with --output"


def check_output_folder(output: Path, overwrite: bool = False) -> None:
    """``output`` holds no other study's results (unless ``overwrite``), can be created (or is
    a folder) and written, and its disk has room; creates nothing."""
    if (output / STUDY_FILE).exists() and not overwrite:
        raise StudyError([Problem("output", f"{output} already holds the results of a study; pass --overwrite to replace them (earlier MLflow runs are kept) or {FIX}")])
    existing = output
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is" if existing == output else f"would be inside {existing}, which is"
        raise StudyError([Problem("output", f"{output} {what} a file, not a folder; {FIX}")])
    if not os.access(existing, os.W_OK | os.X_OK):
        raise StudyError([Problem("output", f"{output} is not writable ({existing} denies writing); choose a writable folder with --output")])
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise StudyError([Problem("output", f"{output} is on a full disk ({free // 1024} KiB free, a study needs at least {MIN_FREE_BYTES // 2**20} MiB); free some space or {FIX}")])


def make_output_folder(output: Path, overwrite: bool) -> None:
    """Create ``output`` and prove a write reaches its disk; with ``overwrite``, remove an
    earlier study's Tune folder and result files."""
    try:
        output.mkdir(parents=True, exist_ok=True)
        _write_probe(output / ".write-test")
    except OSError as exc:
        (output / ".write-test").unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StudyError([Problem("output", f"{output} is on a full disk ({exc.strerror}); free some space or {FIX}")]) from None
        raise StudyError([Problem("output", f"cannot write to {output}: {exc.strerror}; choose a writable folder with --output")]) from None
    if overwrite:
        shutil.rmtree(output / "tune", ignore_errors=True)
        for name in RESULT_FILES:
            (output / name).unlink(missing_ok=True)


def _write_probe(probe: Path) -> None:
    """A small write, flushed to the disk, then removed: a full disk fails here, not mid-study."""
    with open(probe, "wb") as f:
        f.write(b"\0" * 65536)
        f.flush()
        os.fsync(f.fileno())
    probe.unlink()
