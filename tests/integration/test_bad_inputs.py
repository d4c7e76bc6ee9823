"""Every case of the bad-input catalogue (tests/bad_inputs.py) through the real `polytask run`:
exit code 2, `error:` with the field, the value and the fix, one problem for a single fault,
no trial started, nothing written to MLflow.

All but two cases fail before Ray starts and run in this process (typer's runner); the two
about the cluster's resources run `python -m polytask run` in a process of their own, which
starts a local Ray (about 10 s each).
"""

from __future__ import annotations

import shutil

import pytest

from tests.bad_inputs import CASES, Workspace, run_case

pytestmark = pytest.mark.integration


def test_the_catalogue_has_at_least_40_distinct_cases():
    ids = [case.id for case in CASES]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", [c for c in CASES if not c.ray] + [c for c in CASES if c.ray], ids=lambda c: c.id)
def test_bad_input_is_refused_before_anything_starts(case, text_data, tmp_path):
    if case.id == "gpu-without-gpus" and shutil.which("nvidia-smi"):
        pytest.skip("this machine has a GPU")
    outcome = run_case(case, Workspace(text_data, tmp_path))
    assert outcome.exit_code == 2, outcome.stdout + outcome.stderr
    assert "Traceback" not in outcome.stderr and outcome.message.startswith("error:"), outcome.stderr
    for part in case.expect:
        assert part in outcome.message, f"{part!r} not in: {outcome.message}"
    if case.single:
        assert outcome.problems == 1, outcome.message
    assert "Study '" not in outcome.stdout  # the line that starts the trials
    assert outcome.trials_started == 0
    assert outcome.mlflow_runs == 0 and not (outcome.output / "mlflow.db").exists()
    assert not (outcome.output / "tune").exists()
