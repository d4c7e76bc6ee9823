"""Ray Tune's results and checkpoints on S3-compatible storage (`--storage s3://...`), as a
multi-node study needs them. The bucket is the one boundary we cannot reach here, so a local
S3-compatible server (moto's) stands in for it; Ray Tune, pyarrow's S3 filesystem, MLflow and
`polytask resume`'s restore check run for real against it."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from polytask.spec import parse_spec
from polytask.study.run import run_study
from tests.support import study_dict

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_a_study_keeps_its_tune_experiment_in_s3(tmp_path, text_data, s3_bucket):
    from ray import tune

    raw = study_dict(text_data, candidates=[{"weighting": "equal"}, {"weighting": "uncertainty"}], execution={"storage": "s3://polytask-results/tune"})
    result = run_study(parse_spec(raw), output=tmp_path / "out", console=Console(file=io.StringIO(), width=160))

    assert result.comparison.best is not None
    assert result.tracking.tune_path == f"s3://polytask-results/tune/tiny-{result.tracking.parent_run_id[:8]}"
    keys = [o["Key"] for o in s3_bucket.list_objects_v2(Bucket="polytask-results", Prefix="tune/")["Contents"]]
    prefix = result.tracking.tune_path.removeprefix("s3://polytask-results/")
    assert any(k.startswith(f"{prefix}/experiment_state") for k in keys), keys
    assert sum(k.endswith("trial_state.pt") for k in keys) == 2  # each trial's last checkpoint (1 of 2 epochs kept)
    assert not (tmp_path / "out" / "tune").exists()  # nothing written to local storage instead
    assert tune.Tuner.can_restore(result.tracking.tune_path)  # what `polytask resume` checks first
