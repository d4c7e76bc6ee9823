"""Security checklist (issue 8), each item checked here or where named:

- the MLflow server and UI bind to 127.0.0.1 unless told otherwise;
- credentials come from the environment or a file and never reach what polytask prints, logs,
  saves or reports: a URI setting with a password is refused (polytask.ops.credentials), URIs shown
  are masked (mask_credentials; its cases: tests/unit/test_server.py);
- checkpoints are loaded with ``weights_only=True``; a pickled object in one is refused;
- YAML is loaded with ``yaml.safe_load``: Python tags are refused; nothing in platform/ unpickles
  untrusted input;
- no credentials under k8s/: tests/unit/test_k8s.py (test_no_credentials_under_k8s and the
  credential-scan tests);
- pinned artifacts verified by sha256 and refused on mismatch:
  tests/unit/test_artifacts.py::test_sha_mismatch_is_refused_and_not_cached.

docs/reliability-faults.md has the checklist as a table.
"""

from __future__ import annotations

import ast
import inspect
import pickle
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from polytask import cli
from polytask.errors import StudyError
from polytask.ops.server import server_command
from polytask.ops.tracking import Tracking
from polytask.spec import load_spec, parse_spec, with_overrides

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "platform").rglob("*.py")) + sorted((ROOT / "strategies").rglob("*.py"))
SECRET = "s3cret"
SECRET_URIS = ["http://user:s3cret@host:5000", "https://user:s3cret@mlflow.example.com", "postgresql://u:s3cret@db/x", "postgresql+psycopg://db/x?user=u&password=s3cret"]


# ----------------------------------------------------------------------------- binding


@pytest.mark.parametrize("command", [cli.server, cli.ui])
def test_server_and_ui_default_to_localhost(command):
    assert inspect.signature(command).parameters["host"].default == "127.0.0.1"


def test_the_built_command_lines_bind_to_localhost(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_ARTIFACTS_DESTINATION"):
        monkeypatch.delenv(name, raising=False)
    command = server_command()
    assert command[command.index("--host") + 1] == "127.0.0.1"

    served: list[list[str]] = []
    monkeypatch.setattr(cli, "serve", lambda command, env, **options: served.append(command) or 0)
    Tracking(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment_id="1", parent_run_id="abc", study="s").save(tmp_path)
    for args in (["ui", str(tmp_path)], ["server"]):
        result = CliRunner().invoke(cli.app, args)
        assert result.exit_code == 0, result.output
        assert served[-1][served[-1].index("--host") + 1] == "127.0.0.1", args


# ----------------------------------------------------------------------------- credentials


def write_spec(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("uri", SECRET_URIS)
@pytest.mark.parametrize("field", ["tracking.uri", "optuna.storage", "execution.storage"])
def test_a_password_in_a_uri_setting_is_refused_without_showing_it(make_study, tmp_path, field, uri):
    section, key = field.split(".")
    raw = make_study(**{section: {key: uri}})
    if section == "optuna":  # optuna.storage needs something searched
        raw["candidates"] = [{"name": "tuned", "weighting": "scalarization", "search": {"trials": 2}}]
    with pytest.raises(StudyError) as error:
        load_spec(write_spec(tmp_path, raw))
    rendered = error.value.render()
    assert field in rendered and "carries a password" in rendered and SECRET not in rendered
    assert ("MLFLOW_TRACKING_PASSWORD" if uri.startswith("http") else "PGPASSWORD") in rendered


def test_the_same_uris_without_a_password_are_accepted(make_study):
    spec = parse_spec(make_study(tracking={"uri": "http://user@host:5000"}, execution={"storage": "s3://bucket/tune"}))
    assert spec.tracking.uri == "http://user@host:5000"


def test_command_line_and_environment_uris_with_a_password_are_refused(make_study, tmp_path, monkeypatch):
    spec = parse_spec(make_study())
    with pytest.raises(StudyError, match="--tracking-uri"):
        with_overrides(spec, tracking_uri="http://user:s3cret@host:5000")
    with pytest.raises(StudyError, match="--storage"):
        with_overrides(spec, storage="postgresql://u:s3cret@db/x")

    path = write_spec(tmp_path, make_study())
    runner = CliRunner()
    flag = runner.invoke(cli.app, ["run", str(path), "--tracking-uri", "http://user:s3cret@host:5000", "--output", str(tmp_path / "out")])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://u:s3cret@db/x")
    env = runner.invoke(cli.app, ["run", str(path), "--output", str(tmp_path / "out")])
    for result in (flag, env):
        assert result.exit_code == 2, result.output
        assert "carries a password" in result.output and SECRET not in result.output
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_submit_refuses_a_password_before_contacting_the_cluster(make_study, tmp_path):
    from polytask.ops.jobs import submit_study

    path = write_spec(tmp_path, make_study())
    with pytest.raises(StudyError) as error:  # the address is never reached: nothing listens there
        submit_study(path, "http://127.0.0.1:9", tracking_uri="http://user:s3cret@mlflow:5000", working_dir=tmp_path)
    assert "--tracking-uri" in error.value.render() and SECRET not in error.value.render()


def test_server_prints_its_stores_masked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "serve", lambda command, env: 0)
    monkeypatch.setenv("MLFLOW_BACKEND_STORE_URI", "postgresql://u:s3cret@db/x")
    monkeypatch.setenv("MLFLOW_ARTIFACTS_DESTINATION", "s3://bucket/mlflow?token=s3cret")
    result = CliRunner().invoke(cli.app, ["server"])
    assert result.exit_code == 0, result.output
    assert "postgresql://u:***@db/x" in result.output and SECRET not in result.output


def test_params_tags_and_saved_spec_hold_no_credentials(make_study, tmp_path, monkeypatch):
    """Credentials in the environment (where they belong) reach none of what a study records:
    the parent run's params, tags and spec.yaml artifact, a trial's params and tags."""
    from mlflow import MlflowClient

    from polytask.ops.tracking import start_study
    from polytask.schema import FIXED
    from polytask.study.trial import _params, _tags
    from polytask.training.train import TrialPlan

    for name in ("MLFLOW_TRACKING_PASSWORD", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD"):
        monkeypatch.setenv(name, SECRET)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "user")
    spec = parse_spec(make_study(tracking={"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}, execution={"storage": str(tmp_path / "tune")}))
    tracking = start_study(spec, tmp_path)
    client = MlflowClient(tracking.uri)
    run = client.get_run(tracking.parent_run_id)
    saved = Path(client.download_artifacts(tracking.parent_run_id, "spec.yaml", str(tmp_path / "download"))).read_text()
    plan = TrialPlan(spec, "equal", 0)
    config = {"candidate": "equal", "seed": 0, "phase": FIXED}
    recorded = [run.data.params, run.data.tags, _params(spec, plan, config), _tags(spec, plan, config)]
    for values in recorded:
        assert not any(SECRET in f"{k}={v}" for k, v in values.items())
        assert not any(k.startswith(("tracking", "optuna", "execution")) for k in values)  # URIs are no params
    assert SECRET not in saved and SECRET not in spec.to_yaml()


def test_index_credentials_stay_out_of_artifact_errors(monkeypatch, tmp_path):
    """A private package index URL may carry a token; errors name the index masked."""
    import urllib.error
    import urllib.request

    from polytask.ops.artifacts import ARTIFACTS, ArtifactError, _archive_url

    def refused(url, timeout=None):
        raise urllib.error.URLError("connection refused")

    monkeypatch.setattr(urllib.request, "urlopen", refused)
    monkeypatch.setenv("POLYTASK_INDEX_URL", "http://user:s3cret@127.0.0.1:9/simple")
    with pytest.raises(ArtifactError) as error:
        _archive_url(next(a for a in ARTIFACTS.values() if a.url is None))
    assert "user:***@127.0.0.1:9" in str(error.value) and SECRET not in str(error.value)


# ----------------------------------------------------------------------------- loading data


def calls(name: str) -> list[tuple[Path, ast.Call]]:
    """Every call of ``a.b(...)`` written as ``name`` ("torch.load") in platform/ and strategies/."""
    module, attribute = name.rsplit(".", 1)
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == attribute:
                if isinstance(node.func.value, ast.Name) and node.func.value.id == module:
                    found.append((path, node))
    return found


def test_every_torch_load_is_weights_only():
    loads = calls("torch.load")
    assert loads, "no torch.load found: has the scan broken?"
    for path, node in loads:
        weights_only = [k for k in node.keywords if k.arg == "weights_only"]
        assert weights_only and isinstance(weights_only[0].value, ast.Constant) and weights_only[0].value.value is True, f"{path}:{node.lineno}"


def test_no_unsafe_deserialisation_in_the_platform():
    """yaml.load / unsafe_load / full_load, pickle and marshal loads, remote code: none, except
    the searcher's own state (polytask.study.search), which polytask pickles into Tune's experiment
    folder and reads back, trusted as Tune's own pickled experiment state is."""
    trusted = {("search.py", "pickle.load")}
    for name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all", "pickle.load", "pickle.loads",
                 "cloudpickle.load", "cloudpickle.loads", "marshal.loads", "dill.load", "dill.loads"):  # fmt: skip
        for path, node in calls(name):
            assert (path.name, name) in trusted, f"{path}:{node.lineno} calls {name}"
    text = "\n".join(path.read_text() for path in SOURCES)
    for unsafe in ("trust_remote_code=True", "weights_only=False", "allow_pickle=True", "yaml.Loader", "UnsafeLoader", "FullLoader"):
        assert unsafe not in text, unsafe


class Payload:
    """Unpickling this would create ``marker``: what an attacker's checkpoint would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_a_checkpoint_with_a_pickled_object_is_refused(tmp_path, monkeypatch):
    from ray import tune

    from polytask.study import trial

    marker = tmp_path / "pwned"
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    torch.save({"epoch": 1, "model": {"w": torch.zeros(2)}, "extra": Payload(marker)}, folder / trial.CHECKPOINT_FILE)
    monkeypatch.setattr(trial.tune, "get_checkpoint", lambda: tune.Checkpoint.from_directory(str(folder)))
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        trial._load_checkpoint()
    assert not marker.exists()
    # the same state without the object loads: checkpoints polytask writes are plain data
    torch.save({"epoch": 1, "model": {"w": torch.zeros(2)}}, folder / trial.CHECKPOINT_FILE)
    assert trial._load_checkpoint()["epoch"] == 1


@pytest.mark.parametrize(
    "document",
    [
        "name: !!python/object/apply:os.system ['touch {marker}']\n",
        "name: !!python/object/new:subprocess.Popen [['touch', '{marker}']]\n",
        "!!python/object/apply:builtins.exec ['open(\"{marker}\", \"w\")']\n",
        "name: !!python/name:os.system\n",
    ],
)
def test_yaml_python_tags_are_refused(tmp_path, document):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(document.format(marker=marker))
    with pytest.raises(StudyError) as error:
        load_spec(path)
    rendered = error.value.render()
    assert "not valid YAML" in rendered and "python/" in rendered and "line 1" in rendered
    assert not marker.exists()
