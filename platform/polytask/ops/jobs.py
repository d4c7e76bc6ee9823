"""``polytask submit``: run a study on a Ray cluster as a Ray job.

    spec --(validated here)--> JobSubmissionClient(address).submit_job(
        entrypoint="polytask run SPEC [--output ...] [--storage ...] [--tracking-uri ...]",
        runtime_env={"working_dir": ...})  --> the job's logs streamed here --> its final status

The working directory (the spec, and any data files it names relative to itself) is zipped and
shipped with the job; on the cluster ``polytask run`` starts in the job's copy of it on the head
node. Ray sets ``RAY_ADDRESS`` for a job's entrypoint to the cluster's GCS address, and
``polytask run`` reads ``RAY_ADDRESS``, so the study's trials run on the cluster it was submitted
to. (Ray finds that address the way ``ray.init(address="auto")`` does: from
``<temp dir>/ray_current_cluster`` on the head node, which names the last Ray started there —
right on a real cluster, one Ray per node; on a machine running several Rays that share
``/tmp/ray`` it can name another one.) polytask itself must be installed on the cluster's nodes
(the container image has it): the working directory carries specs and data, not the platform.

The job writes where ``--output`` says, on the cluster. A relative ``--output`` is made absolute
here (against this directory), which is right where the cluster shares this machine's file
system (one machine, an NFS mount at the same path); without ``--output`` the study writes to
``runs/<name>`` inside the job's temporary copy of the working directory on the head node.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shlex
import time
from pathlib import Path

from rich.console import Console

from polytask.errors import Problem, StudyError
from polytask.ops.credentials import uri_problem
from polytask.schema import STUDY_TAG, tag

EXCLUDES = [".git", ".venv", "runs", "build", "**/__pycache__", "*.egg-info"]
ADDRESS_HELP = "the HTTP address of the Ray dashboard on the cluster's head node, e.g. http://HEAD:8265 (port 8265 unless the cluster chose another)"


def submit_study(
    spec_path: str | Path,
    address: str | None,
    output: str | Path | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
    working_dir: str | Path = ".",
    wait: bool = True,
    console: Console | None = None,
) -> int:
    """Submit ``polytask run`` of a study as a Ray job; stream its logs and return the exit code:
    0 when the job succeeded (or, with ``wait=False``, was submitted), 1 when it failed or was
    stopped, 130 when following was interrupted (the job goes on). Raises :class:`StudyError`
    (exit code 2) for anything found before submission: a bad spec, a spec outside the working
    directory, an unreachable address."""
    console = console or Console()
    spec = _load(spec_path)
    # the job's command line shows in the Ray dashboard: no passwords on it (polytask.ops.credentials)
    problems = uri_problem("--storage", storage) + uri_problem("--tracking-uri", tracking_uri)
    if problems:
        raise StudyError(problems)
    folder = Path(working_dir).resolve()
    if not folder.is_dir():
        raise StudyError([Problem("--working-dir", f"{working_dir} is not a folder; give the folder to ship with the job (it must hold the spec)")])
    entrypoint = job_entrypoint(_relative_spec(Path(spec_path), folder), output, storage, tracking_uri)
    client = connect(address)
    if output is None and not (spec.output and Path(spec.output).is_absolute()):
        console.print(
            f"note: no --output: the study writes to runs/{spec.name} inside the job's temporary copy of the working directory "
            "on the head node; pass --output with a folder on storage the cluster shares to keep the results",
            highlight=False, markup=False,
        )  # fmt: skip
    submission_id = f"polytask-{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    job_id = _submit(client, address, console, entrypoint=entrypoint, submission_id=submission_id, runtime_env=runtime_env(folder), metadata={tag(STUDY_TAG): spec.name})

    dashboard = (address if "://" in address else f"http://{address}").rstrip("/")
    console.print(f"Submitted job {job_id} (study '{spec.name}'): {entrypoint}", highlight=False, markup=False)
    console.print(f"Dashboard: {dashboard}/#/jobs/{job_id}", highlight=False, markup=False)
    follow = f"ray job logs --follow {job_id} --address {dashboard}"
    stop = f"ray job stop {job_id} --address {dashboard}"
    if not wait:
        console.print(f"Follow it: {follow}\nStop it: {stop}", highlight=False, markup=False)
        return 0
    try:
        asyncio.run(_stream_logs(client, job_id, console))
        info = _final_info(client, job_id)
    except KeyboardInterrupt:
        console.print(f"\nStopped following; job {job_id} keeps running on the cluster.\nFollow it again: {follow}\nStop it: {stop}", highlight=False, markup=False)
        return 130
    status = str(getattr(info.status, "value", info.status))
    if status == "SUCCEEDED":
        console.print(f"Job {job_id} SUCCEEDED", highlight=False, markup=False)
        return 0
    code = getattr(info, "driver_exit_code", None)
    exited = f" (polytask run exited with code {code})" if code is not None else ""
    # The message's first line says why; the rest repeats the end of the logs streamed above.
    reason = (info.message or "no message").splitlines()[0].split(", last available logs")[0]
    console.print(f"Job {job_id} {status}{exited}: {reason}", highlight=False, markup=False)
    if "command not found" in (info.message or ""):
        console.print("polytask must be installed on the cluster's nodes (README, 'On a Ray cluster')", highlight=False, markup=False)
    return 1


def job_entrypoint(spec: Path, output: str | Path | None = None, storage: str | None = None, tracking_uri: str | None = None) -> str:
    """The job's command line: ``polytask run SPEC ...``, each argument shell-quoted. A relative
    ``output`` is made absolute (see the module's docstring); ``storage`` and ``tracking_uri`` are
    passed as given."""
    args = ["polytask", "run", spec.as_posix()]
    if output is not None:
        args += ["--output", os.path.abspath(output)]
    if storage is not None:
        args += ["--storage", storage]
    if tracking_uri is not None:
        args += ["--tracking-uri", tracking_uri]
    return shlex.join(args)


def runtime_env(working_dir: Path) -> dict:
    """Ship ``working_dir`` with the job, without virtual environments, results and caches."""
    return {"working_dir": str(working_dir), "excludes": list(EXCLUDES)}


def connect(address: str | None):
    """A JobSubmissionClient for ``address``, or a StudyError naming ``--address`` and the fix."""
    if not address:
        raise StudyError([Problem("--address", f"no cluster given; pass --address with {ADDRESS_HELP}, or set RAY_API_SERVER_ADDRESS")])
    if address.startswith("ray://"):
        raise StudyError([Problem("--address", f"{address!r} is a Ray Client address; `polytask submit` needs {ADDRESS_HELP} (`polytask run --address ray://...` takes Ray Client addresses)")])
    _check_reachable(address)
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except AuthenticationError as exc:
        raise StudyError([Problem("--address", f"the Ray cluster at {address!r} refused this client: {exc}")]) from None
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise StudyError([Problem("--address", f"cannot use the Ray cluster at {address!r}: {exc}; --address is {ADDRESS_HELP}, and the dashboard must be running (`ray start --head` starts it with ray[default])")]) from None


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail fast (the Ray client waits on a silent host as long as the OS lets it): any HTTP answer
    at all counts as reachable, the client judges the rest."""
    import requests

    url = (address if "://" in address else f"http://{address}").rstrip("/") + "/api/version"
    try:
        requests.get(url, timeout=timeout)
    except requests.exceptions.RequestException as exc:
        reason = type(exc).__name__ if isinstance(exc, requests.exceptions.Timeout) else "connection refused or host unknown"
        raise StudyError([Problem("--address", f"cannot reach a Ray dashboard at {address!r} ({reason}); --address is {ADDRESS_HELP}; check that the cluster is up and the port is reachable from here (e.g. `kubectl port-forward svc/<cluster>-head-svc 8265`)")]) from None


def _submit(client, address: str, console: Console, agent_wait: float = 60.0, **job) -> str:
    """``client.submit_job(**job)``, waiting for the head node's job agent when the cluster has
    just started (the dashboard answers before its agent registers: "No available agent")."""
    deadline = time.monotonic() + agent_wait
    waiting = False
    while True:
        try:
            return client.submit_job(**job)
        except (RuntimeError, ValueError, OSError) as exc:  # the upload (size limit, unreadable file) or the server refused
            reason = str(exc)
            if "No available agent" in reason and time.monotonic() < deadline:
                if not waiting:
                    console.print("The cluster's job agent is not ready yet (a cluster that just started); waiting...", highlight=False, markup=False)
                    waiting = True
                time.sleep(2.0)
                continue
            hint = ""
            if "size" in reason.lower():
                hint = "; the working directory is over Ray's size limit: give a smaller --working-dir"
            elif "No available agent" in reason:
                hint = f"; the head node's dashboard agent did not start within {agent_wait:g} s: see dashboard_agent.log in the head's Ray session logs (a second Ray on the same machine holding the agent's port, 52365, is one cause)"
            raise StudyError([Problem("submit", f"the cluster at {address} refused the job: {reason}{hint}")]) from None


def _load(spec_path: str | Path):
    from polytask.spec import load_spec

    try:
        return load_spec(spec_path)
    except StudyError as exc:
        if exc.source is None:
            raise StudyError(exc.problems, str(spec_path)) from None
        raise


def _relative_spec(spec: Path, working_dir: Path) -> Path:
    try:
        return spec.resolve().relative_to(working_dir)
    except ValueError:
        raise StudyError([Problem("SPEC", f"{spec} is not inside the working directory {working_dir}, which is what the job gets; move the spec into it or pass --working-dir with a folder that holds it")]) from None


async def _stream_logs(client, job_id: str, console: Console) -> None:
    async for chunk in client.tail_job_logs(job_id):
        console.out(chunk, end="", highlight=False)
        console.file.flush()


def _final_info(client, job_id: str, timeout: float = 30.0):
    """The job's info once its status is terminal (the log stream may close a moment before)."""
    deadline = time.monotonic() + timeout
    while True:
        info = client.get_job_info(job_id)
        if info.status.is_terminal() or time.monotonic() > deadline:
            return info
        time.sleep(0.5)
