"""k8s/: the KubeRay + MLflow manifests render, match the Kubernetes and KubeRay schemas, agree
with the code (CLI, studies, ports, image, Ray version) and hold no credentials.

No cluster is needed. Rendering uses `kubectl kustomize` (or a `kustomize` binary); when neither
is on PATH the tests that need a render skip, and the consistency checks read the base's files. Core kinds are validated with the schemas that
the `kubernetes-validate` package ships, RayCluster and RayJob with the openAPIV3Schema of
KubeRay's CRDs vendored in tests/k8s_schemas/ (see its README). Both validations are strict:
an unknown (e.g. misspelled) field is an error, as with `kubectl apply --validate=strict`.
"""

from __future__ import annotations

import fnmatch
import functools
import gzip
import importlib.metadata
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
GUIDE = REPO / "docs" / "kubernetes.md"
DOCKERFILE = K8S / "image" / "Dockerfile"
SCHEMAS = REPO / "tests" / "k8s_schemas"
SECRETS = K8S / "secrets"

OVERLAYS = sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml"))
TARGETS = ["base", *(f"overlays/{name}" for name in OVERLAYS)]
# Kubernetes versions whose API schemas every object must match (an older and a recent one).
K8S_VERSIONS = ("1.30", "1.35")
IMAGE = "polytask"  # the name every manifest uses; kustomize `images:` sets registry and tag
CRD_SCHEMAS = {("ray.io/v1", "RayCluster"): "rayclusters-v1.json.gz", ("ray.io/v1", "RayJob"): "rayjobs-v1.json.gz"}
CREDENTIAL_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|CREDENTIAL|BACKEND_STORE_URI|KEY_ID", re.IGNORECASE)


# --- loading and rendering ------------------------------------------------------------------


def _kustomize_command() -> list[str] | None:
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    return None


@functools.cache
def _render(target: str) -> tuple[dict, ...]:
    command = _kustomize_command()
    assert command is not None
    done = subprocess.run([*command, str(K8S / target)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(command)} k8s/{target} failed:\n{done.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def render(target: str) -> tuple[dict, ...]:
    if _kustomize_command() is None:
        pytest.skip("neither `kubectl` (1.27+, with kustomize v5) nor `kustomize` is on PATH: cannot render k8s/")
    return _render(target)


def manifests(target: str) -> tuple[dict, ...]:
    """The objects of a target for the consistency checks: rendered; without kustomize, the
    base's own files (kustomize only adds labels and the image tag to them), and overlays skip."""
    if _kustomize_command() is None and target == "base":
        return tuple(raw_base())
    return render(target)


def _kustomization(folder: Path) -> dict:
    return yaml.safe_load((folder / "kustomization.yaml").read_text())


def _resource_files(folder: Path) -> list[Path]:
    """The files a kustomization lists under `resources:` (not bases, not patches)."""
    return [folder / entry for entry in _kustomization(folder).get("resources", []) if (folder / entry).is_file()]


@functools.cache
def raw_objects(folder: str) -> tuple[tuple[Path, dict], ...]:
    """(file, object) for every object in the resource files of k8s/<folder>, read without kustomize."""
    return tuple((path, doc) for path in _resource_files(K8S / folder) for doc in yaml.safe_load_all(path.read_text()) if doc)


def raw_base() -> list[dict]:
    return [doc for _, doc in raw_objects("base")]


def one(objects, kind: str, name: str | None = None) -> dict:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_specs(obj: dict) -> list[tuple[str, dict]]:
    """(where, pod spec) of every pod template in an object."""
    kind, spec = obj["kind"], obj.get("spec", {})
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        return [(kind, spec["template"]["spec"])]
    if kind == "RayCluster":
        return [("head", spec["headGroupSpec"]["template"]["spec"])] + [
            (f"worker group {group['groupName']}", group["template"]["spec"]) for group in spec.get("workerGroupSpecs", [])
        ]
    if kind == "RayJob" and "rayClusterSpec" in spec:
        return pod_specs({"kind": "RayCluster", "spec": spec["rayClusterSpec"]})
    return []


def containers(obj: dict) -> list[dict]:
    return [c for _, pod in pod_specs(obj) for c in pod.get("initContainers", []) + pod["containers"]]


def image_name(reference: str) -> str:
    """Repository basename: registry.example.com/ml/polytask:0.1.0 -> polytask."""
    return reference.split("@")[0].rsplit("/", 1)[-1].split(":")[0]


def container_env(container: dict, objects) -> dict[str, tuple]:
    """Environment of a container: name -> ("value", v) | ("secret", name, key) | ("secretRef", name)."""
    env: dict[str, tuple] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            config = one(objects, "ConfigMap", source["configMapRef"]["name"])
            env.update({k: ("value", v) for k, v in config.get("data", {}).items()})
        else:
            env[f"<all keys of {source['secretRef']['name']}>"] = ("secretRef", source["secretRef"]["name"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = ("value", item["value"])
        elif "secretKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = ("secret", ref["name"], ref["key"])
        else:
            env[item["name"]] = ("other", item.get("valueFrom"))
    return env


# --- the polytask CLI ----------------------------------------------------------------------


def parse_polytask(argv: list[str]):
    """Parse a `polytask ...` command line with the real CLI, without running it: fails if the
    subcommand or an option does not exist, a value does not convert, or an argument is missing."""
    import typer.main

    import polytask.cli

    assert argv and Path(argv[0]).name == "polytask", argv
    group = typer.main.get_command(polytask.cli.app)
    root = group.context_class(group, info_name="polytask")  # typer may bundle its own click
    name, *args = argv[1:]
    command = group.get_command(root, name)
    if command is None:
        pytest.fail(f"`{shlex.join(argv)}`: polytask has no command {name!r} (it has {', '.join(group.list_commands(root))})")
    try:
        return command.make_context(name, list(args), parent=root)
    except Exception as exc:  # click's UsageError / BadParameter (typer's or click's own class)
        if not hasattr(exc, "format_message"):
            raise
        pytest.fail(f"`{shlex.join(argv)}` is not a valid polytask command: {exc.format_message()}")


def rayjob_command(objects) -> list[str]:
    return shlex.split(one(objects, "RayJob")["spec"]["entrypoint"])


def guide_polytask_commands() -> list[list[str]]:
    """Every `polytask ...` command in the guide's shell code blocks (also after `-- ` of
    kubectl exec / ray job submit), continuation lines joined."""
    commands = []
    for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", GUIDE.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            for i, token in enumerate(tokens):
                if Path(token).name == "polytask" and (i == 0 or tokens[i - 1] in ("--", "&&", ";")):
                    rest = tokens[i:]
                    end = next((j for j, t in enumerate(rest) if t in ("&&", ";", "|", "&", "||")), len(rest))
                    commands.append(rest[:end])
    return commands


# --- schemas -------------------------------------------------------------------------------


def _strict(schema):
    """A copy of an OpenAPI v3 schema in which objects with declared properties reject unknown
    ones (the API server would silently prune them; kubectl --validate=strict rejects them)."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {name: _strict(sub) for name, sub in out["properties"].items()}
        if "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    for key in ("items", "not"):
        if isinstance(out.get(key), dict):
            out[key] = _strict(out[key])
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _strict(out["additionalProperties"])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in out:
            out[key] = _strict(out[key])
    return out


@functools.cache
def crd_validator(api_version: str, kind: str):
    import jsonschema

    schema = json.loads(gzip.decompress((SCHEMAS / CRD_SCHEMAS[api_version, kind]).read_bytes()))
    return jsonschema.Draft4Validator(_strict(schema))


def schema_errors(obj: dict) -> list[str]:
    """Why an object does not match its schema (empty when it does)."""
    import kubernetes_validate

    key = (obj.get("apiVersion"), obj.get("kind"))
    if key in CRD_SCHEMAS:
        errors = [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in crd_validator(*key).iter_errors(obj)]
        name = obj.get("metadata", {}).get("name", "")
        limit = 53 if key[1] == "RayCluster" else 47  # KubeRay: MaxRayClusterNameLength, MaxRayJobNameLength
        if not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name) or len(name) > limit:
            errors.append(f"metadata.name {name!r}: KubeRay wants a DNS-1035 label of at most {limit} characters")
        return errors
    errors = []
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"Kubernetes {version}: {'.'.join(map(str, exc.path)) or '<root>'}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"no schema to validate against: {exc.message}")
    return errors


# --- rendering and schemas ------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_renders_with_kustomize(target):
    kinds = sorted({o["kind"] for o in render(target)})
    assert {"RayCluster", "RayJob", "Deployment", "Service", "ConfigMap", "PersistentVolumeClaim"} <= set(kinds), kinds
    assert "Secret" not in kinds, "Secrets are created with `kubectl create secret`, never shipped"


@pytest.mark.parametrize("target", TARGETS)
def test_every_rendered_object_matches_its_schema(target):
    problems = {f"{o['kind']}/{o['metadata']['name']}": schema_errors(o) for o in render(target)}
    assert not {k: v for k, v in problems.items() if v}


@pytest.mark.parametrize("folder", TARGETS)
def test_every_raw_resource_file_matches_its_schema(folder):
    """Independently of kustomize: the files as written (base and each overlay's own resources)."""
    objects = raw_objects(folder)
    assert objects or folder != "base"
    problems = {f"{path.relative_to(REPO)}: {o['kind']}/{o['metadata']['name']}": schema_errors(o) for path, o in objects}
    assert not {k: v for k, v in problems.items() if v}


def test_strict_validation_rejects_a_misspelled_field():
    """The validators are not vacuous: a typo anywhere in a RayCluster or a Deployment fails."""
    cluster = json.loads(json.dumps(one(raw_base(), "RayCluster")))
    assert not schema_errors(cluster)
    cluster["spec"]["workerGroupSpecs"][0]["minReplica"] = 0
    cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    errors = " ".join(schema_errors(cluster))
    assert "minReplica" in errors and "imagePullPolice" in errors
    job = json.loads(json.dumps(one(raw_base(), "RayJob")))
    job["spec"]["entryPoint"] = job["spec"].pop("entrypoint")
    assert "entryPoint" in " ".join(schema_errors(job))
    deployment = json.loads(json.dumps(one(raw_base(), "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    assert "readinesProbe" in " ".join(schema_errors(deployment))


def test_vendored_crd_schemas_name_their_source():
    readme = (SCHEMAS / "README.md").read_text()
    for filename in CRD_SCHEMAS.values():
        assert filename in readme
        assert json.loads(gzip.decompress((SCHEMAS / filename).read_bytes()))["properties"]["spec"]["properties"]
    assert re.search(r"\b[0-9a-f]{40}\b", readme), "the KubeRay commit the schemas came from"
    assert "Apache-2.0" in readme


# --- what each variant is for ---------------------------------------------------------------


def _gpu_limit(container: dict) -> str | None:
    return container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")


def _mounts(pod: dict) -> dict[str, str]:
    """mountPath -> claimName of the PersistentVolumeClaims a pod's first container mounts."""
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod.get("volumes", []) if "persistentVolumeClaim" in v}
    return {m["mountPath"]: claims[m["name"]] for m in pod["containers"][0].get("volumeMounts", []) if m["name"] in claims}


def _storage(objects) -> str:
    return parse_polytask(rayjob_command(objects)).params["storage"]


def _check_cluster_basics(objects):
    cluster = one(objects, "RayCluster")
    spec = cluster["spec"]
    assert spec["enableInTreeAutoscaling"] is True
    head = spec["headGroupSpec"]
    assert _gpu_limit(head["template"]["spec"]["containers"][0]) is None, "the head is CPU only"
    assert head["rayStartParams"].get("num-cpus") == "0", "no trial on the head: it runs the drivers"
    ports = {p["containerPort"]: p.get("name") for p in head["template"]["spec"]["containers"][0]["ports"]}
    assert {6379: "gcs-server", 8265: "dashboard", 10001: "client"}.items() <= ports.items()
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"
    groups = spec["workerGroupSpecs"]
    assert len({g["groupName"] for g in groups}) == len(groups)
    for group in groups:
        assert group["minReplicas"] == 0, "workers scale from zero"
        assert 0 <= group["minReplicas"] <= group["maxReplicas"]
        assert group.get("replicas", 0) <= group["maxReplicas"]
    assert "/mnt/results" in _mounts(head["template"]["spec"]), "the study's output folder lives on the head"
    return cluster


@pytest.mark.parametrize("target", TARGETS)
def test_cluster_autoscales_workers_from_zero(target):
    _check_cluster_basics(manifests(target))


def test_base_has_gpu_workers_and_a_shared_results_volume():
    objects = manifests("base")
    cluster = _check_cluster_basics(objects)
    groups = cluster["spec"]["workerGroupSpecs"]
    assert all(_gpu_limit(g["template"]["spec"]["containers"][0]) for g in groups), "every worker group has nvidia.com/gpu limits"
    assert one(objects, "PersistentVolumeClaim", "polytask-results")["spec"]["accessModes"] == ["ReadWriteMany"]
    for where, pod in pod_specs(cluster):
        assert _mounts(pod).get("/mnt/results") == "polytask-results", where
    assert _storage(objects).startswith("/mnt/results/"), "Ray Tune storage on the shared volume"


def test_local_overlay_is_cpu_only_with_in_cluster_stores():
    objects = manifests("overlays/local")
    cluster = _check_cluster_basics(objects)
    assert not [c["name"] for o in objects for c in containers(o) if _gpu_limit(c)], "no GPU anywhere"
    assert not [g for g in cluster["spec"]["workerGroupSpecs"] if g["template"]["spec"].get("tolerations")]
    for name in ("polytask-postgres", "polytask-minio"):
        one(objects, "Deployment", name)
        one(objects, "Service", name)
    config = one(objects, "ConfigMap", "polytask-mlflow")["data"]
    minio = one(objects, "Service", "polytask-minio")
    s3_port = next(p["port"] for p in minio["spec"]["ports"] if p["name"] == "s3")
    assert config["MLFLOW_S3_ENDPOINT_URL"] == config["AWS_ENDPOINT_URL"] == f"http://polytask-minio:{s3_port}"
    assert one(objects, "PersistentVolumeClaim", "polytask-results")["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert _storage(objects).startswith("/mnt/results/")
    for where, pod in pod_specs(cluster):  # one node: every pod shares the ReadWriteOnce volume
        assert _mounts(pod).get("/mnt/results") == "polytask-results", where


def test_local_stores_use_the_credentials_of_the_example_secrets():
    """The in-cluster PostgreSQL is initialised with what the backend store URI says, and MinIO's
    root user is the S3 key pair the tracking server uses."""
    objects = manifests("overlays/local")
    db = _example_env("polytask-mlflow-db")
    uri = urlparse(db["MLFLOW_BACKEND_STORE_URI"])
    postgres = one(objects, "Deployment", "polytask-postgres")
    env = container_env(containers(postgres)[0], objects)
    service = one(objects, "Service", "polytask-postgres")
    assert uri.scheme == "postgresql"
    assert (uri.hostname, uri.port) == (service["metadata"]["name"], service["spec"]["ports"][0]["port"])
    assert uri.username == env["POSTGRES_USER"][1] and uri.path.lstrip("/") == env["POSTGRES_DB"][1]
    assert env["POSTGRES_PASSWORD"] == ("secret", "polytask-mlflow-db", "POSTGRES_PASSWORD")
    assert uri.password == db["POSTGRES_PASSWORD"]
    minio = container_env(containers(one(objects, "Deployment", "polytask-minio"))[0], objects)
    mlflow = container_env(containers(one(objects, "Deployment", "polytask-mlflow"))[0], objects)
    assert minio["MINIO_ROOT_USER"] == mlflow["AWS_ACCESS_KEY_ID"]
    assert minio["MINIO_ROOT_PASSWORD"] == mlflow["AWS_SECRET_ACCESS_KEY"]
    assert len(_example_env("polytask-s3")["AWS_SECRET_ACCESS_KEY"]) >= 8, "MinIO refuses a shorter root password"
    job = one(objects, "Job", "polytask-create-bucket")
    assert container_env(containers(job)[0], objects)["AWS_SECRET_ACCESS_KEY"] == mlflow["AWS_SECRET_ACCESS_KEY"]


def test_gpu_overlay_has_gpu_workers_external_stores_and_s3_tune_storage():
    objects = manifests("overlays/gpu")
    cluster = _check_cluster_basics(objects)
    groups = cluster["spec"]["workerGroupSpecs"]
    assert all(_gpu_limit(g["template"]["spec"]["containers"][0]) for g in groups)
    assert max(g["maxReplicas"] for g in groups) > 1
    assert not [o for o in objects if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["name"] != "polytask-mlflow"], "no in-cluster database or S3"
    assert _storage(objects).startswith("s3://")
    for where, pod in pod_specs(cluster):
        env = container_env(pod["containers"][0], objects)
        assert ("secretRef", "polytask-s3") in env.values(), f"{where}: S3 keys for Ray Tune's storage"
        assert "AWS_DEFAULT_REGION" in env, where
        if where != "head":
            assert not _mounts(pod), f"{where}: no shared volume needed with S3 storage"
    config = one(objects, "ConfigMap", "polytask-mlflow")["data"]
    assert config["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert one(objects, "PersistentVolumeClaim", "polytask-results")["spec"]["accessModes"] == ["ReadWriteOnce"]


# --- agreement with the code and between manifests -------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_rayjob_entrypoint_is_a_real_polytask_run_of_a_valid_study(target):
    """Needs `polytask run --storage` (the CLI contract)."""
    from polytask.spec import load_spec

    objects = manifests(target)
    job = one(objects, "RayJob")
    argv = rayjob_command(objects)
    assert argv[:2] == ["polytask", "run"], argv
    params = parse_polytask(argv).params
    study = REPO / params["spec"]
    assert study.parent == REPO / "studies" and study.is_file(), f"{params['spec']} is not a study in studies/ (the image's working directory is the repo)"
    load_spec(study)
    assert str(params["output"]).startswith("/mnt/results/"), "the output folder goes on the results volume"
    # The RayJob runs on the RayCluster it selects, in the same namespace.
    cluster = one(objects, "RayCluster")
    assert job["spec"]["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
    assert job["metadata"].get("namespace") == cluster["metadata"].get("namespace")
    assert not job["spec"].get("backoffLimit"), "KubeRay rejects backoffLimit with a clusterSelector"
    assert job["spec"].get("submissionMode", "K8sJobMode") == "K8sJobMode"


@pytest.mark.parametrize("target", TARGETS)
def test_tracking_uri_reaches_the_mlflow_service(target):
    """MLFLOW_TRACKING_URI (Ray containers and the RayJob) -> Service polytask-mlflow:port ->
    targetPort -> the container port -> `polytask server --port`; the selector matches the pods;
    the probes hit /health; the server lets that Host header in."""
    objects = manifests(target)
    service = one(objects, "Service", "polytask-mlflow")
    deployment = one(objects, "Deployment", "polytask-mlflow")
    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items(), "Service selector must match the pods"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (container,) = template["spec"]["containers"]
    (port,) = service["spec"]["ports"]
    container_ports = {p.get("name"): p["containerPort"] for p in container["ports"]}
    target_port = port.get("targetPort", port["port"])
    target_port = container_ports[target_port] if isinstance(target_port, str) else target_port
    assert target_port in container_ports.values()

    job = one(objects, "RayJob")
    uris = {("RayJob", job["metadata"]["name"]): yaml.safe_load(job["spec"]["runtimeEnvYAML"])["env_vars"]["MLFLOW_TRACKING_URI"]}
    for where, pod in pod_specs(one(objects, "RayCluster")):
        uris[("RayCluster", where)] = container_env(pod["containers"][0], objects)["MLFLOW_TRACKING_URI"][1]
    for where, uri in uris.items():
        parsed = urlparse(uri)
        assert parsed.scheme == "http", (where, uri)
        assert parsed.hostname.split(".")[0] == service["metadata"]["name"], (where, uri)
        assert parsed.port == port["port"], (where, uri)

    command = container.get("command", []) + container.get("args", [])
    assert command[:2] == ["polytask", "server"], command
    params = parse_polytask(command).params
    assert params["port"] == target_port and params["host"] == "0.0.0.0"
    for probe in ("readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/health"
        assert container_ports.get(get["port"], get["port"]) == target_port

    env = container_env(container, objects)
    allowed = [h.strip() for h in env["MLFLOW_SERVER_ALLOWED_HOSTS"][1].split(",")]
    for host in {urlparse(u).netloc for u in uris.values()} | {f"localhost:{port['port']}"}:
        # mlflow.server.security_utils.is_allowed_host_header: fnmatch for patterns with "*"
        assert any(fnmatch.fnmatch(host, a) if "*" in a else host == a for a in allowed), f"MLflow would reject Host {host}"


@pytest.mark.parametrize("target", TARGETS)
def test_tracking_server_settings_follow_the_contract(target):
    """Backend store and S3 keys from Secrets; endpoint and artifact destination from the
    ConfigMap; artifacts in S3."""
    objects = manifests(target)
    env = container_env(containers(one(objects, "Deployment", "polytask-mlflow"))[0], objects)
    assert env["MLFLOW_BACKEND_STORE_URI"] == ("secret", "polytask-mlflow-db", "MLFLOW_BACKEND_STORE_URI")
    assert env["AWS_ACCESS_KEY_ID"] == ("secret", "polytask-s3", "AWS_ACCESS_KEY_ID")
    assert env["AWS_SECRET_ACCESS_KEY"] == ("secret", "polytask-s3", "AWS_SECRET_ACCESS_KEY")
    assert env["MLFLOW_ARTIFACTS_DESTINATION"][1].startswith("s3://")
    for name in ("MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL"):
        assert urlparse(env[name][1]).scheme in ("http", "https"), name


@pytest.mark.parametrize("target", TARGETS)
def test_references_resolve(target):
    """Every ConfigMap and PersistentVolumeClaim a pod names is in the render; every Secret it
    names has an example file in k8s/secrets/ with the keys it reads, and a `kubectl create
    secret` line in the guide."""
    objects = manifests(target)
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    guide = GUIDE.read_text()
    for obj in objects:
        for where, pod in pod_specs(obj):
            for volume in pod.get("volumes", []):
                if "persistentVolumeClaim" in volume:
                    assert ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]) in names, (obj["kind"], where)
                if "configMap" in volume:
                    assert ("ConfigMap", volume["configMap"]["name"]) in names
            for container in pod.get("initContainers", []) + pod["containers"]:
                mounts = {m["name"] for m in container.get("volumeMounts", [])}
                assert mounts <= {v["name"] for v in pod.get("volumes", [])}, (obj["kind"], where, container["name"])
                for source in container.get("envFrom", []):
                    if "configMapRef" in source:
                        assert ("ConfigMap", source["configMapRef"]["name"]) in names
                    else:
                        secret = source["secretRef"]["name"]
                        assert _example_env(secret), secret
                        assert f"kubectl create secret generic {secret} " in guide
                for item in container.get("env", []):
                    ref = item.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        assert ref["key"] in _example_env(ref["name"]), f"k8s/secrets/{ref['name']}.example.env lacks {ref['key']}"
                        assert f"kubectl create secret generic {ref['name']} " in guide
    for obj in objects:
        if obj["kind"] == "Service":
            pods = [o["spec"]["template"]["metadata"].get("labels", {}) for o in objects if o["kind"] in ("Deployment", "StatefulSet")]
            assert any(obj["spec"]["selector"].items() <= labels.items() for labels in pods), f"Service {obj['metadata']['name']} selects no pods"


@pytest.mark.parametrize("target", TARGETS)
def test_one_polytask_image_everywhere(target):
    images = {c["image"] for o in render(target) for c in containers(o) if image_name(c["image"]) == IMAGE}
    assert len(images) == 1, f"the polytask containers must run one image, found {images}"
    (image,) = images
    tag = _kustomization(K8S / "base")["images"][0]["newTag"]
    assert image.endswith(f"/{IMAGE}:{tag}") or image == f"{IMAGE}:{tag}"
    # every Ray, server and job container runs it
    objects = render(target)
    for kind in ("RayCluster", "Deployment/polytask-mlflow"):
        obj = one(objects, *kind.split("/"))
        assert {c["image"] for c in containers(obj)} == {image}, kind


def test_the_image_is_named_and_tagged_in_one_place():
    """Raw manifests say `image: polytask`; only k8s/base/kustomization.yaml sets the tag (an
    overlay may change the registry), and the guide builds that tag."""
    for folder in TARGETS:
        for path, obj in raw_objects(folder):
            for container in containers(obj):
                if image_name(container["image"]) == IMAGE:
                    assert container["image"] == IMAGE, f"{path.relative_to(REPO)}: write `image: {IMAGE}`; kustomize sets the rest"
    (entry,) = _kustomization(K8S / "base")["images"]
    assert entry["name"] == IMAGE and entry["newTag"]
    for name in OVERLAYS:
        for item in _kustomization(K8S / "overlays" / name).get("images", []):
            assert "newTag" not in item, f"overlays/{name} sets the tag again; it belongs in the base"
    built = re.findall(r"docker build -f k8s/image/Dockerfile -t (\S+) \.", GUIDE.read_text())
    assert built == [f"{IMAGE}:{entry['newTag']}"], built


def test_ray_version_is_the_installed_one_everywhere():
    installed = importlib.metadata.version("ray")
    dockerfile = DOCKERFILE.read_text()
    (arg,) = re.findall(r"^ARG RAY_VERSION=(\S+)$", dockerfile, flags=re.M)
    assert arg == installed, f"k8s/image/Dockerfile builds on Ray {arg}; polytask is installed with ray {installed}"
    (base_image,) = re.findall(r"^FROM (\S+)", dockerfile, flags=re.M)
    assert base_image == "rayproject/ray:${RAY_VERSION}-py311-gpu"
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11", "the image's Python (py311) must satisfy requires-python"
    assert one(raw_base(), "RayCluster")["spec"]["rayVersion"] == installed


def test_image_copies_what_it_installs_and_runs():
    """The Dockerfile's allow-list lets through the package sources, its metadata files and the
    study the RayJob runs (entrypoints run in WORKDIR, the copy of the repository)."""
    dockerfile = DOCKERFILE.read_text()
    assert re.search(r"^WORKDIR /home/ray/polytask$", dockerfile, flags=re.M)
    assert re.search(r"^COPY --chown=ray:users \. \.$", dockerfile, flags=re.M)
    assert re.search(r"pip install \. .*psycopg\[binary\].*psycopg2-binary.*boto3", dockerfile)
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().split()
    assert ignore[ignore.index("*") if "*" in ignore else 0] == "*"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    sources = [*project["tool"]["setuptools"]["package-dir"].values(), rayjob_command(raw_base())[2]]
    needed = {"pyproject.toml", project["project"]["readme"], *(Path(p).parts[0] for p in sources)}
    assert needed <= allowed, f"Dockerfile.dockerignore leaves out {needed - allowed}"
    env = one(raw_base(), "ConfigMap", "polytask-ray-env")["data"]
    assert f"POLYTASK_CACHE={env['POLYTASK_CACHE']}" in dockerfile, "pods must look for the data where the image baked it"


# --- the guide ------------------------------------------------------------------------------


def test_guide_submits_through_the_head_dashboard_port():
    guide = GUIDE.read_text()
    head = one(raw_base(), "RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    dashboard = next(p["containerPort"] for p in head["ports"] if p["name"] == "dashboard")
    assert dashboard == 8265
    cluster = one(raw_base(), "RayCluster")["metadata"]["name"]
    assert f"kubectl port-forward svc/{cluster}-head-svc {dashboard}:{dashboard}" in guide
    submits = [c for c in guide_polytask_commands() if c[1] == "submit"]
    assert submits and all(c[c.index("--address") + 1] == f"http://localhost:{dashboard}" for c in submits)
    service = one(raw_base(), "Service", "polytask-mlflow")
    assert f"kubectl port-forward svc/{service['metadata']['name']} {service['spec']['ports'][0]['port']}" in guide
    for overlay in OVERLAYS:
        assert f"kubectl apply -k k8s/overlays/{overlay}" in guide


def test_guide_polytask_commands_are_real():
    """Needs `polytask submit`, `resume` and `run --storage` (the CLI contract)."""
    commands = guide_polytask_commands()
    assert {c[1] for c in commands} >= {"run", "submit", "resume"}, commands
    for argv in commands:
        parse_polytask(argv)


def test_guide_spec_snippets_are_valid_study_fields(tmp_path):
    """The YAML snippets the guide tells you to put in a spec (optuna storage, GPU packing) are
    accepted by the spec, on top of the RayJob's study."""
    from polytask.spec import load_spec

    study = REPO / rayjob_command(raw_base())[2]
    snippets = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", GUIDE.read_text(), flags=re.S)]
    assert {key for snippet in snippets for key in snippet} >= {"optuna", "resources", "execution"}
    for i, snippet in enumerate(snippets):
        spec = {**yaml.safe_load(study.read_text()), **snippet}
        (tmp_path / f"{i}.yaml").write_text(yaml.safe_dump(spec))
        load_spec(tmp_path / f"{i}.yaml")


def test_guide_entrypoint_matches_the_rayjob():
    assert shlex.join(rayjob_command(raw_base())) in GUIDE.read_text()


# --- no credentials -------------------------------------------------------------------------

# What may stand where a credential would: change-me..., an upper-case name (PASSWORD,
# POSTGRES_PASSWORD), <password>, $(VAR) / ${VAR}, or a mask.
PLACEHOLDER = re.compile(r"change-me[\w-]*|[A-Z][A-Z_]{3,}|<[^>]*>|\$\(?\{?\w+\}?\)?|\*+")


def _example_env(secret: str) -> dict[str, str]:
    path = SECRETS / f"{secret}.example.env"
    assert path.is_file(), f"no example for the Secret {secret}: k8s/secrets/{secret}.example.env"
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def credential_problems(text: str, where: str) -> list[str]:
    """Literal credentials in a file's text: an AWS key id or private key, a Secret object, a
    password in a URL, or a credential-named YAML key / KEY=value line with a value that is not a
    placeholder (comments are not read, references like secretKeyRef: are not values)."""
    problems = []
    if re.search(r"AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----", text):
        problems.append(f"{where}: an AWS key id or a private key")
    if re.search(r"^kind:\s*['\"]?Secret['\"]?\s*$", text, flags=re.M):
        problems.append(f"{where}: a Secret object; create Secrets with kubectl instead")
    passwords = re.findall(r"[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:([^@\s/'\"]+)@", text)
    passwords += re.findall(r"[?&](?:ssl)?password=([^&\s'\"]+)", text, flags=re.I)
    for password in passwords:
        if not PLACEHOLDER.fullmatch(password):
            problems.append(f"{where}: a password in a URL ({password[:2]}...)")
    assignment = r"^[ \t]*-?[ \t]*([\w.-]*(?:password|passwd|secret|token|access_key)(?:_\w*)?)(?![\w.-])[ \t]*[:=][ \t]*([^\s,}#]*)"
    for name, value in re.findall(assignment, text, flags=re.I | re.M):
        value = value.strip("'\"(){}[];,.")
        if value and not PLACEHOLDER.fullmatch(value):
            problems.append(f"{where}: {name} has a literal value")
    return problems


def test_no_credentials_under_k8s():
    """No literal secret anywhere under k8s/ (every file, whatever its kind), and no env file
    but the *.example.env ones."""
    files = [p for p in K8S.rglob("*") if p.is_file()]
    assert files
    problems = []
    for path in files:
        where = str(path.relative_to(REPO))
        problems += credential_problems(path.read_text(), where)
        if path.name.endswith(".env") and not path.name.endswith(".example.env"):
            problems.append(f"{where}: only *.example.env files belong in the repository")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "text",
    [
        "MLFLOW_BACKEND_STORE_URI=postgresql://mlflow:hunter2@db:5432/mlflow\n",
        "POSTGRES_PASSWORD=hunter2\n",
        "  AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI\n",
        "stringData:\n  password: s3cr3t\n",
        "  - {name: X, value: 'postgresql://db/mlflow?password=hunter2'}\n",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n",
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n",
    ],
)
def test_the_credential_scan_catches_literals(text):
    assert credential_problems(text, "sample")


def test_the_credential_scan_lets_placeholders_and_references_through():
    text = (
        "MLFLOW_BACKEND_STORE_URI=postgresql://mlflow:change-me@polytask-postgres:5432/mlflow\n"
        "POSTGRES_PASSWORD=change-me\n# password = POSTGRES_PASSWORD, see above\n"
        "  secretKeyRef: {name: polytask-s3, key: AWS_SECRET_ACCESS_KEY}\n"
        "  value: postgresql://USER:PASSWORD@HOST:5432/DB\n"
    )
    assert credential_problems(text, "sample") == []


@pytest.mark.parametrize("folder", TARGETS)
def test_credential_env_vars_come_from_secrets(folder):
    """In the raw files and the render: an env var whose name says credential is a
    secretKeyRef; no ConfigMap key or RayJob runtime env var is one."""
    objects = [o for _, o in raw_objects(folder)]
    if _kustomize_command() is not None:
        objects += list(_render(folder))
    assert objects or folder != "base"
    for obj in objects:
        for container in containers(obj):
            for item in container.get("env", []):
                if CREDENTIAL_NAME.search(item["name"]):
                    assert "secretKeyRef" in item.get("valueFrom", {}), f"{obj['kind']}/{obj['metadata']['name']}: {item['name']} must come from a Secret"
        if obj["kind"] == "ConfigMap":
            assert not [k for k in obj.get("data", {}) if CREDENTIAL_NAME.search(k)], obj["metadata"]["name"]
        if obj["kind"] == "RayJob" and obj["spec"].get("runtimeEnvYAML"):
            env_vars = yaml.safe_load(obj["spec"]["runtimeEnvYAML"]).get("env_vars", {})
            assert not [k for k in env_vars if CREDENTIAL_NAME.search(k)]


def test_example_secret_files_hold_only_placeholders():
    examples = sorted(SECRETS.glob("*.example.env"))
    assert {p.name for p in examples} == {"polytask-mlflow-db.example.env", "polytask-s3.example.env"}
    for path in examples:
        for key, value in _example_env(path.name.removesuffix(".example.env")).items():
            if CREDENTIAL_NAME.search(key) and "://" not in value:
                assert value.startswith("change-me"), f"{path.name}: {key} must be a change-me placeholder"
            if "://" in value:
                password = urlparse(value).password
                assert password is None or password.startswith("change-me"), f"{path.name}: {key}"
