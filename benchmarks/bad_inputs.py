"""Every case of the bad-input catalogue (tests/bad_inputs.py) through `polytask run`, and the
table of docs/reliability-inputs.md: the case, what is wrong, the message polytask printed.

    .venv/bin/python benchmarks/bad_inputs.py [--write docs/reliability-inputs.md]

Each case runs in a fresh scratch folder over the tests' synthetic data (tests.support), in
this process through typer's runner, exactly as tests/integration/test_bad_inputs.py does.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.bad_inputs import CASES, Workspace, run_case  # noqa: E402
from tests.support import synthetic_rows  # noqa: E402

COMMAND = ".venv/bin/python benchmarks/bad_inputs.py --write docs/reliability-inputs.md"


def synthetic_data(folder: Path) -> dict[str, Path]:
    paths = {}
    for split, (count, seed) in {"train": (400, 1), "validation": (120, 2), "test": (120, 3)}.items():
        paths[split] = folder / f"{split}.csv"
        synthetic_rows(count, seed).to_csv(paths[split], index=False)
    return paths


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def shown(message: str, scratch: str) -> str:
    """The message without the error header and with the scratch folder as <tmp>."""
    text = message.replace(scratch, "<tmp>")
    text = re.sub(r"^error: \d+ problems?( in \S+)?: - ", "", text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", type=Path, help="write the Markdown page here (default: print it)")
    args = parser.parse_args()
    rows, codes, trials, runs, single_ok = [], [], 0, 0, 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as root:
        data = synthetic_data(Path(root))
        for n, case in enumerate(CASES):
            scratch = Path(root) / f"case{n}"
            scratch.mkdir()
            outcome = run_case(case, Workspace(data, scratch))
            codes.append(outcome.exit_code)
            trials += outcome.trials_started
            runs += outcome.mlflow_runs
            single_ok += (not case.single) or outcome.problems == 1
            missing = [part for part in case.expect if part not in outcome.message]
            flag = "" if outcome.exit_code == 2 and not missing else f" **(exit {outcome.exit_code}; missing {missing})**"
            rows.append(f"| `{case.id}` | {cell(case.wrong)} | `` {cell(shown(outcome.message, str(scratch)))} ``{flag} |")
            print(f"{case.id}: exit {outcome.exit_code}", file=sys.stderr)
    seconds = time.perf_counter() - started
    page = "\n".join([
        "# Bad inputs: what polytask says when a study cannot start",
        "",
        f"Made with `{COMMAND}` ({len(CASES)} cases in {seconds:.0f} s on 2 cores); the cases are",
        "[tests/bad_inputs.py](../tests/bad_inputs.py) and [tests/integration/test_bad_inputs.py](../tests/integration/test_bad_inputs.py)",
        "asserts the same of each one.",
        "",
        "Each case is a malformed spec, bad data or a hostile surrounding given to `polytask run SPEC --output OUT`.",
        "polytask must answer with one precise message — the field, the value found and the fix — and exit",
        "code 2, before any trial starts and before anything is written to MLflow: the spec is checked",
        "when it is read, then (study.py `preflight`) the output folder (a folder, writable, at least",
        "8 MiB free), the tracking store (an HTTP server answers `/health` within 3 s; a database's port",
        "accepts a connection; a SQLite store's folder exists), the Ray address (something listens there)",
        "and the data (files, columns, labels); only the resources a trial asks for need Ray itself,",
        "and they are checked as soon as it is up, before the MLflow parent run is created.",
        "",
        "## Summary",
        "",
        "| cases tried | exit code 2 | one problem reported (single-fault cases) | trials started | MLflow runs written |",
        "|---|---|---|---|---|",
        f"| {len(CASES)} | {codes.count(2)} of {len(CASES)} | {single_ok} of {len(CASES)} | {trials} | {runs} |",
        "",
        "## The cases",
        "",
        "Messages as printed (the scratch folder shown as `<tmp>`, the `error: 1 problem in SPEC:` header left out).",
        "",
        "| case | what is wrong | what polytask prints |",
        "|---|---|---|",
        *rows,
        "",
        "## Which paths a spec may name",
        "",
        "* Everything polytask names itself lies inside the output folder: `runs/<name>` and, under it,",
        "  `tune/<name>-<run>`, `mlflow.db`, `mlartifacts/`, the report. Names that become path",
        "  components — the study's and the candidates' names — are one component each (letters, digits,",
        "  `_ . -`, starting with a letter or digit: never `/`, never `..`), so no name leads a write",
        "  out of the folder (`study-name-escapes`, `candidate-name-slash`).",
        "* A spec may name other places to write on purpose: `output`, `execution.storage` (a folder a",
        "  cluster's nodes share), `comparison.baseline_cache` (a cache shared by studies), and the SQLite",
        "  files of `optuna.storage` and `tracking.uri`. A *relative* one of these may not climb out of",
        "  the working directory it is relative to with `..` (`output-escapes`, `storage-escapes`,",
        "  `baseline-cache-escapes`, `optuna-sqlite-escapes`): a spec passed around and run from another",
        "  folder must not write somewhere its reader cannot see from the spec. An absolute path is the",
        "  author's explicit, visible choice and is allowed — refusing it would forbid shared storage on",
        "  a cluster (`--storage /mnt/shared/tune`).",
        "* Paths a spec only reads (data files, a local encoder) may be anywhere.",
        "* `--overwrite` deletes only polytask's own files (`study.json`, `spec.yaml`, the report files,",
        "  `tune/`) and only in a folder that already holds a study.",
        "",
        "## A full disk",
        "",
        "`output-disk-full` mounts a 64 KiB tmpfs (where the tests run as root; elsewhere the disk's free",
        "space is reported as none) and fills it: the pre-flight check refuses a folder with less than",
        "8 MiB free, and creating the folder writes and fsyncs a 64 KiB probe, so a disk that fills in",
        "between is also said as `output: ... is on a full disk (No space left on device); free some space",
        "or choose another folder with --output` rather than a traceback.",
        "",
    ])
    if args.write:
        args.write.write_text(page)
        print(f"wrote {args.write}", file=sys.stderr)
    else:
        print(page)


if __name__ == "__main__":
    main()
