"""Ray Tune's results and checkpoints on S3-compatible storage (`--storage s3://...`), as a
multi-node study needs them. The bucket is the one boundary we cannot reach here, so a local
S3-compatible server (moto's) stands in for it; Ray Tune, pyarrow's S3 filesystem, MLflow and
`polytask resume`'s restore check run for real against it."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from polytask.spec import parse_spec
from polytask.study import run_study
from tests.support import study_dict

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture
def bucket(monkeypatch):
    """An S3-compatible endpoint on 127.0.0.1 with one bucket; credentials from the
    environment, as pyarrow and boto3 read them on a cluster."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(key, value)
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="polytask-results")
        yield s3
    finally:
        server.stop()


def test_a_study_keeps_its_tune_experiment_in_s3(tmp_path, text_data, bucket):
    from ray import tune

    raw = study_dict(text_data, candidates=[{"weighting": "equal"}, {"weighting": "uncertainty"}], execution={"storage": "s3://polytask-results/tune"})
    result = run_study(parse_spec(raw), output=tmp_path / "out", console=Console(file=io.StringIO(), width=160))

    assert result.comparison.best is not None
    assert result.tracking.tune_path == f"s3://polytask-results/tune/tiny-{result.tracking.parent_run_id[:8]}"
    keys = [o["Key"] for o in bucket.list_objects_v2(Bucket="polytask-results", Prefix="tune/")["Contents"]]
    prefix = result.tracking.tune_path.removeprefix("s3://polytask-results/")
    assert any(k.startswith(f"{prefix}/experiment_state") for k in keys), keys
    assert sum(k.endswith("trial_state.pt") for k in keys) == 2  # each trial's last checkpoint (1 of 2 epochs kept)
    assert not (tmp_path / "out" / "tune").exists()  # nothing written to local storage instead
    assert tune.Tuner.can_restore(result.tracking.tune_path)  # what `polytask resume` checks first
