"""The README written beside the manifests: what each file is, how to apply it, check readiness,
and promote or roll back with ``kubectl`` — the moves of notebook 02 (label moves are edits of
``models.config`` in the ConfigMap, which TF Serving polls; on KServe, ``canaryTrafficPercent``
and then promotion).

Every command names this deployment's objects, namespace and files, so it runs as shown.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from ..backends.docker.container import REST_CONTAINER_PORT
from ..config import ModelConfig
from ..protocol.rest_paths import model_path
from .kserve import Rollout, inference_service_name, service_account_name
from .kubernetes import config_map_name
from .plan import Plan
from .repository import ObjectStorage, Volume, revision_uri

__all__ = ["readme"]


def _is_local(base_path: str) -> bool:
    return "://" not in base_path


def _kubectl(plan: Plan, *words: str) -> str:
    namespace = f" -n {plan.namespace}" if plan.namespace else ""
    return f"kubectl{namespace} " + " ".join(words)


def _code(*lines: str) -> str:
    return "```bash\n" + "\n".join(lines) + "\n```"


def _files(files: Sequence[str]) -> str:
    return "\n".join(f"- `{name}`" for name in files)


def _repository(plan: Plan, rollouts: Mapping[str, Rollout]) -> str:
    repository = plan.repository
    if isinstance(repository, Volume):
        folders = ", ".join(f"`{config.name}/<version>/`" for config in plan.configs)
        revisions = ", ".join(
            f"`{config.name}-v{version}/{version}/`"
            for config in plan.configs
            for version in (rollouts[config.name].stable, rollouts[config.name].canary)
            if version is not None
        )
        return (
            f"The models are on the PersistentVolumeClaim `{repository.claim}` ({folders}), "
            "mounted read-only at `/models`. TF Serving polls it: a version folder copied in "
            "(complete, then renamed into place) is loaded as it would be locally. KServe "
            "revisions each serve the newest version under their `storageUri`, so each reads a "
            f"folder of its own on the same volume holding just its version ({revisions})."
        )
    lines = [
        "The official `tensorflow/serving` images have no S3 file system since 2.7, so each "
        "pod's init container (KServe's storage initializer) downloads the repository into an "
        "`emptyDir` before TF Serving starts. Push every version there first "
        "(`tfs.push(base_path, uri)`):",
        "",
        *(_push_line(config, repository.uri(config.name)) for config in plan.configs),
        "",
        "A version pushed later reaches running pods with "
        f"`{_kubectl(plan, 'rollout restart', f'deployment/{plan.name}')}` (a rolling "
        "re-download); label and policy changes need no restart.",
        "",
        "KServe revisions each serve the newest version under their `storageUri`, so each reads "
        "a prefix of its own that holds just its version:",
        "",
    ]
    for config in plan.configs:
        rollout = rollouts[config.name]
        root = repository.uri(config.name)
        for version in (rollout.stable, rollout.canary):
            if version is None:
                continue
            target = revision_uri(root, version)
            if _is_local(config.base_path):
                call = (
                    f"tfs.push({config.base_path!r}, {target.rstrip('/')!r}, versions=[{version}])"
                )
                lines.append(f"- `{call}`")
            else:
                lines.append(f"- copy `{root}{version}/` to `{target}{version}/`")
    if repository.secret:
        lines += ["", *_secret(plan, repository)]
    return "\n".join(lines)


def _push_line(config: ModelConfig, uri: str) -> str:
    line = f"- `{config.name}`: `{uri}`"
    if _is_local(config.base_path):
        line += f" (`tfs.push({config.base_path!r}, {uri.rstrip('/')!r})`)"
    return line


def _secret(plan: Plan, repository: ObjectStorage) -> list[str]:
    secret = repository.secret or ""
    create = _kubectl(
        plan,
        "create secret generic",
        secret,
        '--from-literal=AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID"',
        '--from-literal=AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"',
    )
    annotations = []
    if repository.endpoint:
        scheme, _, host = repository.endpoint.partition("://")
        annotations += [
            f"serving.kserve.io/s3-endpoint={shlex.quote(host.rstrip('/'))}",
            f"serving.kserve.io/s3-usehttps={1 if scheme == 'https' else 0}",
        ]
    if repository.region:
        annotations.append(f"serving.kserve.io/s3-region={shlex.quote(repository.region)}")
    lines = [
        f"Credentials come from the Secret `{secret}` (nothing is stored in these files). Create "
        "it from your own credentials; KServe also reads the endpoint and region from its "
        f"annotations (through the ServiceAccount `{service_account_name(plan)}`):",
        "",
    ]
    commands = [create]
    if annotations:
        commands.append(_kubectl(plan, "annotate secret", secret, *annotations))
    return [*lines, _code(*commands)]


def _label_moves(plan: Plan) -> str:
    config = plan.model
    labels = dict(config.labels)
    edit = _kubectl(plan, "edit", f"configmap/{config_map_name(plan)}")
    apply = _kubectl(plan, "apply -f kubernetes/configmap.yaml")
    steps = [
        "A label move or a pin is an edit of `models.config` in the ConfigMap; TF Serving polls "
        f"the file every {plan.poll_seconds} s (after the kubelet's own sync, up to about a "
        "minute). Either regenerate these files from the notebook after the move "
        "(`server.set_labels(...)`, then `server.deployment(...)`) and apply the ConfigMap, or "
        "edit it in place:",
        "",
        _code(apply, edit),
        "",
    ]
    if "stable" in labels and "canary" in labels and labels["stable"] != labels["canary"]:
        old, new = labels["stable"], labels["canary"]
        steps += [
            f"- **promote** version {new}: in the `stable` entry of `version_labels`, "
            f"`value: {old}` becomes `value: {new}`;",
            f"- **roll back**: set it back to `value: {old}`;",
            f"- **retire the canary**: remove the `canary` entry, then pin version {old} "
            f"(`specific {{ versions: {old} }}`).",
            "",
        ]
    if plan.has_labels:
        steps.append(
            "With labels, the server runs with `--allow_version_labels_for_unavailable_models` "
            "(a labelled config cannot start without it), which also accepts a label on a "
            "version not loaded: load a version (policy) before pointing a label at it, as in "
            "notebook 02."
        )
    metadata = model_path(config.name, label="stable") + "/metadata"
    check = (
        f"curl -s http://127.0.0.1:{REST_CONTAINER_PORT}{metadata} | "
        'python3 -c \'import json, sys; print(json.load(sys.stdin)["model_spec"]["version"])\''
    )
    if "stable" in labels:
        steps += ["", "Which version `stable` answers with now:", "", _code(check)]
    return "\n".join(steps)


def _kubernetes(plan: Plan) -> str:
    status = model_path(plan.model.name)
    rest = REST_CONTAINER_PORT
    return "\n".join(
        [
            "## Kubernetes: tensorflow/serving",
            "",
            _code(
                _kubectl(plan, "apply -f kubernetes/"),
                _kubectl(plan, "rollout status", f"deployment/{plan.name}", "--timeout=10m"),
                _kubectl(plan, "port-forward", f"service/{plan.name}", f"{rest}:{rest}", "&"),
                f"curl -s http://127.0.0.1:{rest}{status}",
            ),
            "",
            "A pod is ready (and gets traffic) once its model's metadata answers, i.e. once a "
            f"version is AVAILABLE (`readinessProbe` on `{status}/metadata`); the status above "
            "lists each version's state. The gRPC API is on port 8500 of the same Service.",
            "",
            "### Promote and roll back",
            "",
            _label_moves(plan),
            "",
            "A traffic split (`tfs.TrafficSplit`) stays the clients' choice of label per request: "
            "TF Serving routes by name only.",
        ]
    )


def _kserve(plan: Plan, rollouts: Mapping[str, Rollout], files: Sequence[str]) -> str:
    lines = [
        "## KServe: InferenceService",
        "",
        "KServe serves each model under its InferenceService's name "
        f"({', '.join(f'`{inference_service_name(c)}`' for c in plan.configs)}), one version "
        "per revision, with no labels.",
    ]
    account = [f for f in files if f.endswith("serviceaccount.yaml")]
    for config in plan.configs:
        name = inference_service_name(config)
        rollout = rollouts[config.name]
        lines += ["", f"### {name}", ""]
        first = [*(_kubectl(plan, "apply -f", f) for f in account)]
        first += [
            _kubectl(plan, "apply -f", f"kserve/{name}.yaml"),
            _kubectl(
                plan, "wait --for=condition=Ready", f"inferenceservice/{name}", "--timeout=10m"
            ),
            _kubectl(plan, "get inferenceservice", name),
        ]
        lines.append(_code(*first))
        if rollout.canary is None:
            continue
        lines += [
            "",
            f"The canary (needs KServe's Serverless mode): version {rollout.canary} gets "
            f"{rollout.canary_percent} % of the requests, version {rollout.stable} the rest. "
            f"Then **promote** it (all traffic to version {rollout.canary}) or **roll back** "
            f"(all to version {rollout.stable}):",
            "",
            _code(
                _kubectl(plan, "apply -f", f"kserve/{name}-canary.yaml"),
                _kubectl(plan, "get inferenceservice", name),
                "# promote",
                _kubectl(
                    plan,
                    "patch inferenceservice",
                    name,
                    "--type=json",
                    "-p",
                    '\'[{"op": "remove", "path": "/spec/predictor/canaryTrafficPercent"}]\'',
                ),
                "# or roll back",
                _kubectl(
                    plan,
                    "patch inferenceservice",
                    name,
                    "--type=merge",
                    "-p",
                    '\'{"spec": {"predictor": {"canaryTrafficPercent": 0}}}\'',
                ),
            ),
        ]
    return "\n".join(lines)


def readme(plan: Plan, rollouts: Mapping[str, Rollout], files: Sequence[str]) -> str:
    """The README text for ``files`` (paths relative to the output folder, README excluded)."""
    models = ", ".join(f"`{config.name}`" for config in plan.configs)
    return "\n".join(
        [
            f"# {plan.name}: TF Serving on Kubernetes and KServe",
            "",
            f"Written by tfserve-nb from the notebook's model configs ({models}: version policy "
            f"and labels as last sent), for `{plan.image}`. Run the commands from this folder.",
            "",
            _files(files),
            "",
            "## The model repository",
            "",
            _repository(plan, rollouts),
            "",
            _kubernetes(plan),
            "",
            _kserve(plan, rollouts, files),
            "",
        ]
    )
