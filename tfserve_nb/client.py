"""ServingClient: numpy in, numpy out, against any TF Serving over gRPC (and REST).

Works the same against ``tensorflow_model_server``, the ``tensorflow/serving`` container and the
embedded server, because it only speaks the protocol. Errors the server answers with become
:class:`~tfserve_nb.errors.ServingError` carrying the server's code and text unchanged.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from .config import ModelConfig, to_server_config
from .errors import ServerTimeoutError, ServingError
from .model_server import tensor_proto
from .servables.saved_model import signatures_from_meta_graph
from .servables.signature import Signature
from .traffic_split import TrafficSplit

MAX_MESSAGE_BYTES = 2**31 - 1
"""No 4 MB cap on messages (gRPC's default, a classic TF Serving trip-up)."""

STATE_NAMES = {
    0: "UNKNOWN",
    10: "START",
    20: "LOADING",
    30: "AVAILABLE",
    40: "UNLOADING",
    50: "END",
}


@dataclass(frozen=True)
class VersionStatus:
    """One entry of ``GetModelStatus``: a version, its state and, after a failed load, the
    error (``error_code`` is the canonical code name, ``"OK"`` otherwise)."""

    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""


@dataclass(frozen=True)
class PredictResult:
    """A predict answer: outputs by alias, and which version and signature answered."""

    outputs: dict[str, np.ndarray]
    version: int | None
    signature_name: str

    def value(self) -> np.ndarray | dict[str, np.ndarray]:
        """The single output's array, or the dict when there are several."""
        if len(self.outputs) == 1:
            return next(iter(self.outputs.values()))
        return dict(self.outputs)


class ServingClient:
    """A client of one TF Serving instance.

    ``grpc_target`` is ``host:port``; ``rest_url`` (``http://host:port``) is needed only for
    :meth:`predict_rest`. ``model_name`` is the default for every call's ``model_name``.
    Thread-safe.
    """

    def __init__(
        self,
        grpc_target: str,
        rest_url: str | None = None,
        *,
        model_name: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.grpc_target = grpc_target
        self.rest_url = rest_url.rstrip("/") if rest_url else None
        self.model_name = model_name
        self.timeout = timeout
        self._channel = grpc.insecure_channel(
            grpc_target,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self._predict_stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._model_stub = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self._signatures: dict[tuple[str, str], Signature] = {}

    def __repr__(self) -> str:
        return f"ServingClient({self.grpc_target!r}, rest_url={self.rest_url!r})"

    def close(self) -> None:
        self._channel.close()

    # ---- calls -------------------------------------------------------------------------------

    def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        try:
            return method(request, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            raise ServingError(exc.code().name, exc.details() or "") from None

    def _name(self, model_name: str | None) -> str:
        name = model_name or self.model_name
        if not name:
            raise ValueError("No model_name given and the client has no default model_name")
        return name

    @staticmethod
    def _fill_spec(
        spec: Any, name: str, version: int | None, label: str | None, signature_name: str | None
    ) -> None:
        if version is not None and label is not None:
            raise ValueError("Give a version or a label, not both")
        spec.name = name
        if version is not None:
            spec.version.value = int(version)
        if label is not None:
            spec.version_label = label
        if signature_name:
            spec.signature_name = signature_name

    def signature(
        self,
        model_name: str | None = None,
        signature_name: str | None = None,
        *,
        version: int | None = None,
        label: str | None = None,
    ) -> Signature:
        """The named signature (default ``serving_default``) as the server reports it."""
        key = signature_name or "serving_default"
        signatures = self.metadata(model_name, version=version, label=label)
        if key not in signatures:
            raise ServingError(
                "FAILED_PRECONDITION",
                f'Serving signature key "{key}" not found. Available: {sorted(signatures)}',
            )
        return signatures[key]

    def _inputs(
        self,
        x: Any,
        name: str,
        signature_name: str | None,
        version: int | None,
        label: str | None,
    ) -> dict[str, np.ndarray]:
        cache_key = (name, signature_name or "serving_default")
        signature = self._signatures.get(cache_key)
        if signature is None:
            signature = self.signature(name, signature_name, version=version, label=label)
            self._signatures[cache_key] = signature
        if isinstance(x, Mapping):
            named = dict(x)
        elif len(signature.inputs) == 1:
            named = {next(iter(signature.inputs)): x}
        else:
            raise ValueError(
                f"Model {name!r} signature {signature.key!r} has inputs "
                f"{sorted(signature.inputs)}: pass a dict keyed by those names"
            )
        arrays = {}
        for alias, value in named.items():
            spec = signature.inputs.get(alias)
            dtype = spec.numpy_dtype if spec is not None else None
            if dtype is not None and dtype != np.dtype(object):
                arrays[alias] = np.asarray(value, dtype=dtype)
            else:
                arrays[alias] = np.asarray(value)
        return arrays

    def predict_detailed(
        self,
        x: Any,
        *,
        model_name: str | None = None,
        version: int | None = None,
        label: str | None = None,
        signature_name: str | None = None,
        output_filter: Sequence[str] = (),
        timeout: float | None = None,
        split: TrafficSplit | None = None,
    ) -> PredictResult:
        """Predict over gRPC. ``x`` is an array-like (single-input signatures) or a dict of
        them; values are cast to the signature's dtypes. Returns outputs and the answering
        version.

        ``split`` (a :class:`~tfserve_nb.traffic_split.TrafficSplit`, e.g.
        ``TrafficSplit({"stable": 90, "canary": 10})``) chooses this request's version or
        label in place of ``version``/``label``; successive calls with the same split are spread
        by its weights."""
        if split is not None:
            if version is not None or label is not None:
                raise ValueError("predict: give a split or a version/label, not both")
            version, label = split.next()
        name = self._name(model_name)
        request = predict_pb2.PredictRequest()
        self._fill_spec(request.model_spec, name, version, label, signature_name)
        for alias, array in self._inputs(x, name, signature_name, version, label).items():
            request.inputs[alias].CopyFrom(tensor_proto.from_ndarray(array))
        request.output_filter.extend(output_filter)
        response = self._call(self._predict_stub.Predict, request, timeout)
        outputs = {a: tensor_proto.to_ndarray(t) for a, t in sorted(response.outputs.items())}
        served = (
            response.model_spec.version.value if response.model_spec.HasField("version") else None
        )
        return PredictResult(outputs, served, response.model_spec.signature_name)

    def predict(self, x: Any, **kwargs: Any) -> np.ndarray | dict[str, np.ndarray]:
        """Like :meth:`predict_detailed`, returning the output array (a dict if several)."""
        return self.predict_detailed(x, **kwargs).value()

    def predict_rest(
        self,
        x: Any,
        *,
        model_name: str | None = None,
        version: int | None = None,
        label: str | None = None,
        signature_name: str | None = None,
        columnar: bool = False,
    ) -> Any:
        """Predict over REST (row format, or columnar); returns the decoded JSON answer's
        ``predictions`` / ``outputs`` as numpy arrays."""
        name = self._name(model_name)
        arrays = self._inputs(x, name, signature_name, version, label)
        plain = {k: v.tolist() for k, v in arrays.items()}
        if columnar:
            body: dict[str, Any] = {
                "inputs": plain if len(plain) > 1 else next(iter(plain.values()))
            }
        elif len(plain) == 1:
            body = {"instances": next(iter(plain.values()))}
        else:
            n = len(next(iter(plain.values())))
            body = {"instances": [{k: v[i] for k, v in plain.items()} for i in range(n)]}
        if signature_name:
            body["signature_name"] = signature_name
        answer = self.rest("POST", self.rest_path(name, version, label) + ":predict", body)
        result = answer["outputs"] if columnar else answer["predictions"]
        if isinstance(result, dict):
            return {k: np.asarray(v) for k, v in result.items()}
        if result and isinstance(result[0], dict):
            return {k: np.asarray([r[k] for r in result]) for k in result[0]}
        return np.asarray(result)

    @staticmethod
    def rest_path(name: str, version: int | None = None, label: str | None = None) -> str:
        """``/v1/models/NAME[/versions/N | /labels/L]``."""
        path = f"/v1/models/{urllib.parse.quote(name, safe='')}"
        if version is not None:
            path += f"/versions/{int(version)}"
        elif label is not None:
            path += f"/labels/{urllib.parse.quote(label, safe='')}"
        return path

    def rest(self, method: str, path: str, body: Any = None) -> Any:
        """One REST call; returns the decoded JSON or raises ServingError with its text."""
        if not self.rest_url:
            raise ValueError("This client has no rest_url")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.rest_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            try:
                message = json.loads(payload)["error"]
            except (ValueError, KeyError, TypeError):
                message = payload.decode(errors="replace")
            raise ServingError(f"HTTP {exc.code}", message) from None

    def status(
        self, model_name: str | None = None, version: int | None = None
    ) -> list[VersionStatus]:
        """``GetModelStatus``: the model's versions, newest first."""
        request = get_model_status_pb2.GetModelStatusRequest()
        self._fill_spec(request.model_spec, self._name(model_name), version, None, None)
        response = self._call(self._model_stub.GetModelStatus, request)
        from tensorflow.core.protobuf import error_codes_pb2

        return sorted(
            (
                VersionStatus(
                    s.version,
                    STATE_NAMES.get(s.state, str(s.state)),
                    error_codes_pb2.Code.Name(s.status.error_code),
                    s.status.error_message,
                )
                for s in response.model_version_status
            ),
            key=lambda s: s.version,
            reverse=True,
        )

    def metadata(
        self,
        model_name: str | None = None,
        *,
        version: int | None = None,
        label: str | None = None,
    ) -> dict[str, Signature]:
        """``GetModelMetadata``: the served version's signatures."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._fill_spec(request.model_spec, self._name(model_name), version, label, None)
        response = self._call(self._predict_stub.GetModelMetadata, request)
        signature_def_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_def_map)
        signatures = signatures_from_meta_graph(signature_def_map)
        return {k: v for k, v in signatures.items() if not k.startswith("__")}  # no init ops

    def reload_config(self, configs: Sequence[ModelConfig], timeout: float | None = None) -> None:
        """``HandleReloadConfigRequest``: make ``configs`` the server's whole model list."""
        request = model_management_pb2.ReloadConfigRequest()
        request.config.CopyFrom(to_server_config(configs))
        self._call(self._model_stub.HandleReloadConfigRequest, request, timeout)
        self._signatures.clear()

    def wait_until_available(
        self,
        model_name: str | None = None,
        version: int | None = None,
        timeout: float = 60.0,
        poll_interval: float = 0.05,
    ) -> int:
        """Poll ``GetModelStatus`` until ``version`` (or any version) is AVAILABLE; return it.

        Raises ServingError at once if that version's load failed (END with an error), and
        ServerTimeoutError with the states seen when ``timeout`` passes.
        """
        deadline = time.monotonic() + timeout
        seen: list[VersionStatus] | str = "no answer yet"
        while True:
            try:
                seen = self.status(model_name)
            except ServingError as exc:
                if exc.code not in ("NOT_FOUND", "UNAVAILABLE"):
                    raise
                seen = exc.message
            else:
                for s in seen:
                    if version is not None and s.version != version:
                        continue
                    if s.state == "AVAILABLE":
                        return s.version
                    if version is not None and s.state == "END" and s.error_code != "OK":
                        raise ServingError(s.error_code, s.error_message)
            if time.monotonic() >= deadline:
                what = f"version {version}" if version is not None else "a version"
                raise ServerTimeoutError(
                    f"{what} of model {self._name(model_name)!r} did not become AVAILABLE "
                    f"within {timeout:g} s; last status: {seen}"
                )
            time.sleep(poll_interval)
