"""The protocol's operations on protobuf messages, shared by the gRPC and REST front-ends.

After TF Serving's ``predict_impl``, ``classification_service``, ``regression_service``,
``multi_inference_helper``, ``get_model_metadata_impl``, ``get_model_status_impl`` and
``ModelServiceImpl::HandleReloadConfigRequest``: each takes a request message and returns the
response message, or raises :class:`~tfserve_nb.core.status.ServingStatusError` with upstream's
code and text.
"""

from __future__ import annotations

from typing import Any

from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_pb2,
    predict_pb2,
)

from ..config import ModelConfig
from ..core.status import invalid_argument
from ..protocol import tensor_proto
from ..servables import classifier, regressor
from ..servables.multi_inference import run_multi_inference
from .monitoring import METRICS
from .server_core import ServerCore

SIGNATURE_DEF = "signature_def"


def model_spec_version(model_spec: Any) -> tuple[int | None, str | None]:
    """``(version, label)`` asked for by a ``ModelSpec`` (at most one is set)."""
    choice = model_spec.WhichOneof("version_choice")
    if choice == "version":
        return model_spec.version.value, None
    if choice == "version_label":
        return None, model_spec.version_label
    return None, None


def predict(core: ServerCore, request: Any) -> Any:
    """``PredictionService.Predict``."""
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    spec = request.model_spec
    version, label = model_spec_version(spec)
    result = core.predict(
        spec.name,
        tensor_proto.ndarrays_by_alias(request.inputs),
        version=version,
        label=label,
        signature_name=spec.signature_name,
        output_filter=list(request.output_filter),
    )
    response = predict_pb2.PredictResponse()
    response.model_spec.name = spec.name
    response.model_spec.version.value = result.version
    response.model_spec.signature_name = result.signature_name
    # TF Serving's default (kAsProtoField): typed fields, which clients read as float_val etc.;
    # --enable_serialization_as_tensor_content: tensor_content bytes (kAsProtoContent)
    as_field = not core.options.enable_serialization_as_tensor_content
    for alias, array in result.outputs.items():
        response.outputs[alias].CopyFrom(tensor_proto.from_ndarray(array, as_field=as_field))
    return response


def classify(core: ServerCore, request: Any) -> Any:
    """``PredictionService.Classify`` (``TensorflowClassificationServiceImpl::Classify``)."""
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    version, label = model_spec_version(request.model_spec)
    with core.servable(request.model_spec.name, version, label) as (served_version, servable):
        return classifier.run_classify(
            servable, served_version, request, core.options.enable_signature_method_name_check
        )


def regress(core: ServerCore, request: Any) -> Any:
    """``PredictionService.Regress`` (``TensorflowRegressionServiceImpl::Regress``)."""
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    version, label = model_spec_version(request.model_spec)
    with core.servable(request.model_spec.name, version, label) as (served_version, servable):
        return regressor.run_regress(
            servable, served_version, request, core.options.enable_signature_method_name_check
        )


def multi_inference(core: ServerCore, request: Any) -> Any:
    """``PredictionService.MultiInference`` (``RunMultiInferenceWithServerCore``): the first
    task's model spec picks the servable (no task: an empty spec)."""
    spec = request.tasks[0].model_spec if request.tasks else model_pb2.ModelSpec()
    version, label = model_spec_version(spec)
    with core.servable(spec.name, version, label) as (served_version, servable):
        return run_multi_inference(
            servable, served_version, request, core.options.enable_signature_method_name_check
        )


def get_model_metadata(core: ServerCore, request: Any) -> Any:
    """``PredictionService.GetModelMetadata`` (only ``signature_def`` is supported)."""
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    if not request.metadata_field:
        raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
        if field != SIGNATURE_DEF:
            raise invalid_argument(f"Metadata field {field} is not supported")
    version, label = model_spec_version(request.model_spec)
    name = request.model_spec.name
    with core.servable(name, version, label) as (served_version, servable):
        signature_def_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in servable.signature_def_map.items():
            signature_def_map.signature_def[key].CopyFrom(signature)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = name
    response.model_spec.version.value = served_version
    response.metadata[SIGNATURE_DEF].Pack(signature_def_map)
    return response


def get_model_status(core: ServerCore, request: Any) -> Any:
    """``ModelService.GetModelStatus`` (a version label in the spec is ignored, as upstream)."""
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    spec = request.model_spec
    version = spec.version.value if spec.HasField("version") else None
    response = get_model_status_pb2.GetModelStatusResponse()
    for state in core.model_status(spec.name, version):
        entry = response.model_version_status.add()
        entry.version = state.id.version
        entry.state = int(state.state)
        entry.status.error_code = int(state.code)
        entry.status.error_message = state.message
    return response


def handle_reload_config_request(core: ServerCore, request: Any) -> Any:
    """``ModelService.HandleReloadConfigRequest``: replace the model config list. The answer
    carries an OK ``status`` and, for each of ``metric_names``, how much that metric's value
    grew during the reload (``Metric.int64_value_increase``, see
    :meth:`~.monitoring.Metrics.int64_value`), as upstream's does."""
    config = request.config
    names = list(dict.fromkeys(request.metric_names))
    before = {name: METRICS.int64_value(name) for name in names}
    if config.WhichOneof("config") != "model_config_list":
        raise invalid_argument(
            "ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
            "ModelConfigList is currently supported"
        )
    core.reload_config([ModelConfig.from_proto(c) for c in config.model_config_list.config])
    response = model_management_pb2.ReloadConfigResponse()
    response.status.SetInParent()
    for name in names:
        increase = METRICS.int64_value(name) - before[name]
        response.metric.add(name=name, int64_value_increase=increase)
    return response
