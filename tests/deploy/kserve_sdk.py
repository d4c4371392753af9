"""Run by ``test_kserve.py`` with the Python of KServe's virtualenv (``.venv/tools/kserve``), so
that KServe's own SDK models, not this project's code, read and write the InferenceServices.

Reads a JSON object from standard input, ``{"ours": [manifest, ...], "expected": [fields, ...]}``,
and prints ``{"kserve": VERSION, "round_trip": [...], "problems": [[...], ...], "built": [...]}``:

- ``round_trip``: each of ``ours`` read into ``V1beta1InferenceService`` field by field, every key
  looked up in the SDK models' ``attribute_map`` and typed by their ``openapi_types`` (core types
  by the Kubernetes client's models, as the SDK's classes name them), then written back by the
  SDK's ``ApiClient.sanitize_for_serialization`` (less :func:`without_placeholders`);
- ``problems``: for each, the keys no SDK model has (the SDK's own deserializer would drop them
  silently) and the values of the wrong type;
- ``built``: each of ``expected`` (the fields of :func:`build`) constructed with the SDK's classes
  and constants, and serialized the same way.
"""

from __future__ import annotations

import json
import re
import sys
from importlib import metadata
from typing import Any

import kserve
import kubernetes.client
from kserve import constants
from kubernetes.client import V1ObjectMeta, V1ResourceRequirements

PRIMITIVES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "datetime": str,
    "int": int,
    "bool": bool,
    "float": (int, float),
}


def _model_class(name: str) -> Any:
    return getattr(kserve.models, name, None) or getattr(kubernetes.client.models, name)


def read(data: Any, type_name: str, path: str, problems: list[str]) -> Any:
    """``data`` as an instance of SDK type ``type_name``; what does not fit goes to ``problems``."""
    # the SDK's models spell containers list[T] / dict(str, T); the Kubernetes client's List[T] /
    # Dict[str, T]
    listed = re.fullmatch(r"(?:list|List)\[(.*)\]", type_name)
    if listed:
        inner = listed.group(1)
        return [read(item, inner, f"{path}[{i}]", problems) for i, item in enumerate(data)]
    mapped = re.fullmatch(r"dict\([^,]*, (.*)\)|Dict\[[^,]*, (.*)\]", type_name)
    if mapped:
        inner = mapped.group(1) or mapped.group(2)
        return {key: read(v, inner, f"{path}.{key}", problems) for key, v in data.items()}
    if type_name == "object":
        return data
    if type_name in PRIMITIVES:
        if isinstance(data, bool) != (type_name == "bool") or not isinstance(
            data, PRIMITIVES[type_name]
        ):
            problems.append(f"{path}: {type_name} expected, got {data!r}")
        return data
    klass = _model_class(type_name)
    attributes = {key: attribute for attribute, key in klass.attribute_map.items()}
    arguments = {}
    for key, value in data.items():
        if key not in attributes:
            problems.append(f"{path}.{key}: no such field in {type_name}")
            continue
        attribute = attributes[key]
        arguments[attribute] = read(
            value, klass.openapi_types[attribute], f"{path}.{key}", problems
        )
    return klass(**arguments)


def build(fields: dict[str, Any]) -> Any:
    """An InferenceService with the TensorFlow predictor, from the SDK's classes."""
    model = kserve.V1beta1ModelSpec(
        model_format=kserve.V1beta1ModelFormat(name="tensorflow"),
        runtime_version=fields["runtime_version"],
        storage_uri=fields["storage_uri"],
        resources=V1ResourceRequirements(**fields["resources"]),
    )
    predictor = kserve.V1beta1PredictorSpec(
        model=model,
        service_account_name=fields.get("service_account_name"),
        min_replicas=fields.get("min_replicas"),
        max_replicas=fields.get("max_replicas"),
        scale_metric=fields.get("scale_metric"),
        scale_target=fields.get("scale_target"),
        canary_traffic_percent=fields.get("canary_traffic_percent"),
    )
    return kserve.V1beta1InferenceService(
        api_version=constants.KSERVE_V1BETA1,
        kind=constants.KSERVE_KIND_INFERENCESERVICE,
        metadata=V1ObjectMeta(
            name=fields["name"],
            namespace=fields.get("namespace"),
            labels=fields["labels"],
            annotations=fields["annotations"],
        ),
        spec=kserve.V1beta1InferenceServiceSpec(predictor=predictor),
    )


def without_placeholders(value: Any) -> Any:
    """``value`` less its ``""`` entries: the SDK's ``V1beta1ModelSpec`` comes from Go's
    ``corev1.Container``, whose ``name`` is not ``omitempty``, so it always writes ``name: ""``;
    the InferenceService CRD does not require it and KServe's own examples leave it out."""
    if isinstance(value, dict):
        return {k: without_placeholders(v) for k, v in value.items() if v != ""}
    if isinstance(value, list):
        return [without_placeholders(v) for v in value]
    return value


def main() -> None:
    request = json.load(sys.stdin)
    client = kserve.ApiClient()
    round_trip, problems = [], []
    for manifest in request["ours"]:
        found: list[str] = []
        service = read(manifest, "V1beta1InferenceService", "", found)
        round_trip.append(without_placeholders(client.sanitize_for_serialization(service)))
        problems.append(found)
    built = [
        without_placeholders(client.sanitize_for_serialization(build(f)))
        for f in request["expected"]
    ]
    json.dump(
        {
            "kserve": metadata.version("kserve"),
            "round_trip": round_trip,
            "problems": problems,
            "built": built,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
