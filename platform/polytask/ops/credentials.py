"""Credentials stay out of a study: never in its spec, so never in what polytask writes.

A study's settings travel far: the resolved spec is saved as ``spec.yaml`` in the output folder
and logged to the MLflow parent run, the searcher's state is pickled into Tune's experiment, the
settings are printed and passed on command lines (``polytask submit``). So a URI setting that
carries a password (``tracking.uri``, ``optuna.storage``, ``execution.storage``, or the
``--tracking-uri`` / ``--storage`` / ``MLFLOW_TRACKING_URI`` that set them) is refused with the
place the password belongs instead, where the libraries already look for it:

- an MLflow tracking server (``http(s)://``): ``MLFLOW_TRACKING_USERNAME`` and
  ``MLFLOW_TRACKING_PASSWORD`` (or ``MLFLOW_TRACKING_TOKEN``) in the environment, or the file
  ``~/.mlflow/credentials`` (section ``[mlflow]``, keys ``mlflow_tracking_username`` and
  ``mlflow_tracking_password``), which MLflow reads itself;
- a database (``postgresql://user@host/db`` for the tracking store or Optuna): ``PGPASSWORD``,
  or a ``~/.pgpass`` file (``PGPASSFILE``), which libpq reads;
- object storage (``s3://``): ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` or
  ``~/.aws/credentials``, as boto3 and pyarrow read them.

On Kubernetes those variables come from Secrets (k8s/, checked by tests/unit/test_k8s.py).
Anything else that shows a URI masks it first (:func:`mask_credentials`).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from polytask.errors import Problem

SECRET_QUERY_KEYS = {"password", "pass", "pwd", "secret", "token", "sslpassword"}


def mask_credentials(uri: str) -> str:
    """``uri`` with its password (and secret query parameters) replaced by ``***``:
    ``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``. Anything that is
    not a URI with credentials (a path, ``sqlite:///x.db``, ``s3://bucket``) comes back unchanged."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        if has_password:
            netloc = f"{user}:***@{hostinfo}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key.lower() in SECRET_QUERY_KEYS for key, _ in pairs):
            query = urlencode([(key, "***" if key.lower() in SECRET_QUERY_KEYS else value) for key, value in pairs], safe="*/:")
    if netloc == parts.netloc and query == parts.query:
        return uri
    return urlunsplit(parts._replace(netloc=netloc, query=query))


HINTS = {
    "http": "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD in the environment, or in the mlflow section of ~/.mlflow/credentials; MLflow sends them to the server",
    "postgresql": "set PGPASSWORD in the environment or put the password in ~/.pgpass (PGPASSFILE); libpq reads both",
    "mysql": "give the database user a password-less login from this host, or use PostgreSQL with PGPASSWORD / ~/.pgpass",
    "s3": "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, or use ~/.aws/credentials",
}


def has_secret(uri: str | None) -> bool:
    """Whether ``uri`` carries a password or a secret query parameter."""
    return bool(uri) and mask_credentials(uri) != uri


def uri_problem(field: str, uri: str | None) -> list[Problem]:
    """A problem naming ``field`` when ``uri`` carries a secret, with where the secret goes."""
    if not has_secret(uri):
        return []
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower().rstrip("s")  # https -> http, s3 stays
    hint = HINTS.get(scheme, "pass it in the environment the client library reads")
    return [Problem(field, f"{mask_credentials(uri)} carries a password; polytask saves and logs this setting (spec.yaml, MLflow, the terminal), so keep the password out of it: remove it from the URI and {hint}")]


def spec_problems(spec) -> list[Problem]:
    """Every URI setting of a :class:`~polytask.spec.StudySpec` that carries a secret."""
    return (
        uri_problem("tracking.uri", spec.tracking.uri)
        + uri_problem("optuna.storage", spec.optuna.storage)
        + uri_problem("execution.storage", spec.execution.storage)
    )
