"""TeachingPanel: the same request as a ``curl`` command and as a Python gRPC snippet."""

from __future__ import annotations

import json
import shlex
from typing import Any

import ipywidgets as widgets
import numpy as np
import traitlets

from ..protocol.rest_paths import model_path
from ._code import code_block
from ._panel import Panel
from ._picker import RequestTarget, TargetKey, TargetPicker
from ._render import note
from ._target import InputSpec

DEFAULT_SIGNATURE = "serving_default"


def curl_command(
    rest_url: str,
    model_name: str,
    target: RequestTarget,
    example: np.ndarray,
    signature_name: str = DEFAULT_SIGNATURE,
) -> str:
    """The REST predict call for one example (row format), as a shell command.

    The URL is the client's (:func:`~tfserve_nb.protocol.rest_paths.model_path`, names
    URL-quoted) followed by ``:predict``; the
    body is ``{"instances": [example]}``, with ``signature_name`` only when it is not the default.
    """
    path = model_path(model_name, version=target.version, label=target.label)
    body: dict[str, Any] = {}
    if signature_name != DEFAULT_SIGNATURE:
        body["signature_name"] = signature_name
    body["instances"] = [_plain(example)]
    return (
        f"curl -s -X POST {shlex.quote(rest_url.rstrip('/') + path + ':predict')} \\\n"
        f"  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(json.dumps(body, separators=(', ', ': ')))}"
    )


def grpc_snippet(
    grpc_address: str, model_name: str, target: RequestTarget, example: np.ndarray, spec: InputSpec
) -> str:
    """Python that sends the same predict request over gRPC with the ``tensorflow-serving-api``
    stubs, the way TF Serving's own examples do, and prints the answering version and outputs."""
    if target.version is not None:
        choose = f"request.model_spec.version.value = {target.version}"
    elif target.label is not None:
        choose = f"request.model_spec.version_label = {target.label!r}"
    else:
        choose = "# no version or label: the latest AVAILABLE version answers"
    values = json.dumps([_plain(example)])
    return "\n".join(
        [
            "import grpc",
            "import numpy as np",
            "import tensorflow as tf",
            "from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc",
            "",
            f"channel = grpc.insecure_channel({grpc_address!r})",
            "stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)",
            "",
            "request = predict_pb2.PredictRequest()",
            f"request.model_spec.name = {model_name!r}",
            choose,
            f"request.model_spec.signature_name = {spec.signature_name!r}",
            f"x = np.array({values}, dtype=np.{spec.dtype})",
            f"request.inputs[{spec.alias!r}].CopyFrom(tf.make_tensor_proto(x))",
            "",
            "response = stub.Predict(request, timeout=10.0)",
            'print("answered by version", response.model_spec.version.value)',
            "for name, tensor in response.outputs.items():",
            "    print(name, tf.make_ndarray(tensor))",
        ]
    )


def _plain(example: np.ndarray) -> Any:
    """JSON-ready nested lists; floats rounded to 6 decimals to keep commands short."""
    array = np.asarray(example)
    if np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64).round(6)
    return array.tolist()


class TeachingPanel(Panel):
    """For the chosen target (latest, a version or a label), the equivalent ``curl`` command and
    Python gRPC snippet, ready to copy. ``example`` is the one example sent (no batch dimension;
    default: zeros shaped like the serving signature's input). The target follows :attr:`target` (a
    :attr:`~tfserve_nb.widgets._picker.RequestTarget.key`); the dashboard links it to the traffic
    panel's."""

    target = TargetKey("latest", help="where the request goes: 'latest', 'version:N' or 'label:L'")
    curl = traitlets.Unicode(help="the current curl command")
    python = traitlets.Unicode(help="the current Python gRPC snippet")

    def __init__(self, source: Any, example: Any = None, **monitor_options: Any) -> None:
        super().__init__(source, "Same request, by hand", **monitor_options)
        self.example = None if example is None else np.asarray(example)
        self.picker = TargetPicker(self.monitor, layout=widgets.Layout(width="230px"))
        self.picker.bind(self)
        self.view = widgets.HTML()
        self.view.add_class("tfnb-teaching")
        self._set_body(self.picker, self.view)
        self._watch(self._render, ["input_spec"])
        self._render()

    @traitlets.observe("target")
    def _render(self, _change: Any = None) -> None:
        spec: InputSpec | None = self.monitor.input_spec
        target = self.monitor.target
        if spec is None:
            self.view.value = note("Waiting for the model's signature (GetModelMetadata)…")
            return
        example = self.example if self.example is not None else spec.zeros_example()
        request_target = RequestTarget.parse(self.target)
        parts = []
        if target.rest_url:
            self.curl = curl_command(
                target.rest_url, target.model_name, request_target, example, spec.signature_name
            )
            parts.append(code_block("REST (curl)", self.curl))
        self.python = grpc_snippet(
            target.grpc_address, target.model_name, request_target, example, spec
        )
        parts.append(code_block("gRPC (Python)", self.python))
        self.view.value = "".join(parts)
