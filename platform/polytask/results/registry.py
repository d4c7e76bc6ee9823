"""Each strategy's best model in the MLflow model registry (``comparison.register_models``).

The best trial of a strategy is the one with the highest validation ``val/score`` among its
finished runs (the same validation-only rule as every other selection). Its ``model/``
artifact (the trained parameters, see TrialRun.log_model) becomes a new version of the
registered model ``<study>.<strategy>``, tagged with the run's seed and validation score.
"""

from __future__ import annotations

from polytask.ops.tracking import Tracking, client, retrying
from polytask.results.comparison import Comparison
from polytask.spec import StudySpec


def register_best_models(spec: StudySpec, comparison: Comparison, tracking: Tracking) -> dict[str, str]:
    """Register every strategy's best model; returns registered name -> version."""
    from mlflow.exceptions import MlflowException

    mlflow = client(tracking.uri)
    trials = comparison.role("trial")
    done = trials[(trials["status"] == "FINISHED") & (trials["phase"] != "search")] if len(trials) else trials
    versions = {}
    for label in dict.fromkeys(r.candidate for r in comparison.rows if r.kind == "strategy"):
        runs = done[done["candidate"] == label] if len(done) else done
        if not len(runs) or "best/val/score" not in runs:
            continue
        best = runs.loc[runs["best/val/score"].idxmax()]
        name = f"{spec.name}.{label}"
        try:
            retrying(lambda: mlflow.create_registered_model(name, description=f"polytask study {spec.name}: the best {label} model by validation score"))
        except MlflowException as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise
        tags = {"polytask.study": spec.name, "polytask.seed": str(best["seed"]), "polytask.val_score": f"{best['best/val/score']:.6f}"}
        version = retrying(lambda: mlflow.create_model_version(name, f"runs:/{best['run_id']}/model", run_id=best["run_id"], tags=tags))
        versions[name] = version.version
    return versions
