"""ServingClient: numpy in, numpy out, against any TF Serving over gRPC (and REST).

Works the same against ``tensorflow_model_server``, the ``tensorflow/serving`` container and the
embedded server, because it only speaks the protocol. Errors the server answers with become
:class:`~tfserve_nb.errors.ServingError` carrying the server's canonical code and text unchanged,
over gRPC and REST alike; a server that cannot be reached is a ServingError too (UNAVAILABLE,
as gRPC reports it), and a request past its deadline a
:class:`~tfserve_nb.errors.DeadlineExceededError` (:func:`tfserve_nb.errors.transport_errors`
is where every call's transport errors are mapped). Arguments refused before sending raise
:class:`~tfserve_nb.errors.InvalidArgumentError`, a ``ValueError``.

**Which version's signature a request is built from.** A predict request names its inputs by
the signature's aliases and casts them to its dtypes, and those may differ between versions
(a ``keras.Sequential`` built without ``keras.Input`` names its input ``keras_tensor_<n>``, a
new ``n`` for every model built in the session). So the client keeps what it has learnt per
served *version* — each version's signatures, as ``GetModelMetadata`` reported them (a
version's signatures never change while it is loaded) — and, per request *target* (the latest
version, a version, or a label), which version that target was last seen to resolve to.

A request is built from the signature of the version its target last resolved to: in the
steady state that is dictionary look-ups and no extra round trip. The knowledge is kept true
by what the server says anyway:

- every ``PredictResponse`` carries ``model_spec.version``, the version that answered; when a
  target's answer comes from another version than recorded, the next request is built from
  that version's signature (fetched once with ``GetModelMetadata`` if not known yet);
- when a request built from what was known is refused — ``INVALID_ARGUMENT`` (HTTP 400 over
  REST), or the client's own check of the inputs' names and dtypes — the client asks
  ``GetModelMetadata`` for the target again (its answer names the version it describes) and,
  if that signature's inputs differ from the ones the request was built from, sends it once
  more built from them. That is how the first request after a switch to a version with other
  input aliases succeeds: one refused request and one metadata call, once per switch. A
  request refused for any other reason costs one metadata call before its error is raised.

Which version answers a target can only be known by asking, so the alternative — resolving it
before every request (``GetModelStatus`` or ``GetModelMetadata``) — would double the round
trips of every prediction. ``reload_config`` forgets everything (labels and base paths may
have moved).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

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

from .by_hand import ConfigReload, config_reload
from .config import ModelConfig, to_server_config
from .core.status import Code
from .errors import (
    InvalidArgumentError,
    ServerTimeoutError,
    ServingError,
    serving_error,
    transport_errors,
)
from .protocol import tensor_proto
from .protocol.rest_paths import model_path
from .protocol.signature import (
    DEFAULT_SERVING_SIGNATURE_DEF_KEY,
    Signature,
    signatures_from_meta_graph,
)
from .request_inputs import request_inputs
from .responses import STATE_NAMES, PredictResult, VersionStatus
from .signature_cache import SignatureCache, Target
from .traffic.split import TrafficSplit
from .waiting import wait_until

_Answer = TypeVar("_Answer")

STALE_SIGNATURE_CODES = frozenset({"INVALID_ARGUMENT"})
"""Refusals that may come from a request built from another version's signature (over REST,
every HTTP 400, which is INVALID_ARGUMENT in :data:`~tfserve_nb.errors.CODE_OF_HTTP_STATUS`)."""

MAX_MESSAGE_BYTES = 2**31 - 1
"""No 4 MB cap on messages (gRPC's default, a classic TF Serving trip-up)."""

CHANNEL_OPTIONS = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.use_local_subchannel_pool", 1),
)
"""The options of every channel the client opens. A channel of its own subchannels: with
grpcio's process-wide pool, a new channel that picks up a connection an earlier, closed channel
is tearing down has its call CANCELLED (measured against a bare grpcio server, rounds of 1,500
concurrent calls on fresh ``grpc.aio`` channels: 43 of 6,000 CANCELLED, none of 6,000 with
local pools)."""

STATUS_POLL_SECONDS = 0.05
"""How often a wait for a version's state asks ``GetModelStatus``."""


class ServingClient:
    """A client of one TF Serving instance.

    ``grpc_target`` is ``host:port``; ``rest_url`` (``http://host:port``) is needed only for
    :meth:`predict_rest`. ``model_name`` is the default for every call's ``model_name``.
    Predictions are built from the signature of the version expected to answer (module
    docstring). Every call raises :class:`~tfserve_nb.errors.TfServeNbError` subclasses only
    (module docstring). Thread-safe.

    Methods share their names and signatures with :class:`~tfserve_nb.handle.ModelServer`'s:
    the subject of a call (``x``, ``version``, ``configs``) is positional, every option —
    ``model_name`` included — keyword-only.
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
            options=list(CHANNEL_OPTIONS),
        )
        self._predict_stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._model_stub = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self._signatures = SignatureCache()

    def __repr__(self) -> str:
        return f"ServingClient({self.grpc_target!r}, rest_url={self.rest_url!r})"

    def close(self) -> None:
        """Close the channel; later calls raise ServingError CANCELLED."""
        self._channel.close()

    # ---- calls -------------------------------------------------------------------------------

    def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        with transport_errors(self.grpc_target):
            return method(request, timeout=timeout or self.timeout)

    def _name(self, model_name: str | None) -> str:
        name = model_name or self.model_name
        if not name:
            raise InvalidArgumentError(
                "No model_name given and the client has no default model_name: pass model_name="
            )
        return name

    def _target(self, model_name: str | None, version: int | None, label: str | None) -> Target:
        """The target a call names (the client's model by default); a version or a label."""
        if version is not None and label is not None:
            raise InvalidArgumentError(
                f"Give a version or a label, not both (got version={version!r}, label={label!r})"
            )
        return (self._name(model_name), version, label)

    @staticmethod
    def _fill_spec(
        spec: Any, name: str, version: int | None, label: str | None, signature_name: str | None
    ) -> None:
        spec.name = name
        if version is not None:
            spec.version.value = int(version)
        if label is not None:
            spec.version_label = label
        if signature_name:
            spec.signature_name = signature_name

    def signature(
        self,
        signature_name: str | None = None,
        *,
        model_name: str | None = None,
        version: int | None = None,
        label: str | None = None,
    ) -> Signature:
        """The named signature (default ``serving_default``) as the server reports it now."""
        return _pick(self._metadata(self._target(model_name, version, label))[1], signature_name)

    def _known_signature(
        self, target: Target, signature_name: str | None, *, refresh: bool = False
    ) -> tuple[int | None, Signature]:
        """The signature to build a request for ``target`` from, and the version it belongs
        to. Asks ``GetModelMetadata`` only when ``refresh`` is set or the version ``target``
        resolves to is not known yet."""
        known = None if refresh else self._signatures.lookup(target)
        served, signatures = self._metadata(target) if known is None else known
        return served, _pick(signatures, signature_name)

    def _send_built(
        self,
        x: Any,
        target: Target,
        signature_name: str | None,
        send: Callable[[dict[str, np.ndarray]], _Answer],
    ) -> _Answer:
        """``send(inputs)`` with ``x`` built from the signature of the version expected to
        answer ``target``; once more with refreshed knowledge if that signature was stale (the
        module docstring tells when)."""
        served, signature = self._known_signature(target, signature_name)
        error: Exception
        try:
            inputs = request_inputs(x, signature, model_name=target[0], version=served)
        except InvalidArgumentError as exc:
            error = exc
        else:
            try:
                return send(inputs)
            except ServingError as exc:
                if exc.code not in STALE_SIGNATURE_CODES:
                    raise
                error = exc
        try:
            served, fresh = self._known_signature(target, signature_name, refresh=True)
        except ServingError:
            raise error from None
        if fresh.inputs == signature.inputs:
            raise error
        return send(request_inputs(x, fresh, model_name=target[0], version=served))

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
        """Predict over gRPC. ``x`` is an array-like (single-input signatures), a dict keyed by
        input alias, or a pandas DataFrame with a column per input (shaped and cast as the
        signature says: :mod:`tfserve_nb.request_inputs`). Returns outputs and the answering
        version.

        ``split`` (a :class:`~tfserve_nb.traffic.split.TrafficSplit`, e.g.
        ``TrafficSplit({"stable": 90, "canary": 10})``) chooses this request's version or
        label in place of ``version``/``label``; successive calls with the same split are spread
        by its weights."""
        if split is not None:
            if version is not None or label is not None:
                raise InvalidArgumentError("predict: give a split or a version/label, not both")
            version, label = split.next()
        target = self._target(model_name, version, label)

        def send(inputs: dict[str, np.ndarray]) -> Any:
            request = predict_pb2.PredictRequest()
            self._fill_spec(request.model_spec, target[0], version, label, signature_name)
            for alias, array in inputs.items():
                request.inputs[alias].CopyFrom(tensor_proto.from_ndarray(array))
            request.output_filter.extend(output_filter)
            return self._call(self._predict_stub.Predict, request, timeout)

        response = self._send_built(x, target, signature_name, send)
        outputs = {a: tensor_proto.to_ndarray(t) for a, t in sorted(response.outputs.items())}
        served = _served_version(response)
        if served is not None:
            self._signatures.answered(target, served)
        return PredictResult(outputs, served, response.model_spec.signature_name)

    def predict(
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
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Like :meth:`predict_detailed`, returning the output array (a dict if several)."""
        return self.predict_detailed(
            x,
            model_name=model_name,
            version=version,
            label=label,
            signature_name=signature_name,
            output_filter=output_filter,
            timeout=timeout,
            split=split,
        ).value()

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
        ``predictions`` / ``outputs`` as numpy arrays. ``x`` as for :meth:`predict_detailed`.
        REST answers do not say which version answered, so only a refusal (HTTP 400) tells
        this client that a latest or label target moved to a version with another signature."""
        target = self._target(model_name, version, label)
        path = model_path(*target) + ":predict"

        def send(inputs: dict[str, np.ndarray]) -> Any:
            plain = {k: v.tolist() for k, v in inputs.items()}
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
            return self.rest("POST", path, body)

        answer = self._send_built(x, target, signature_name, send)
        result = answer["outputs"] if columnar else answer["predictions"]
        if isinstance(result, dict):
            return {k: np.asarray(v) for k, v in result.items()}
        if result and isinstance(result[0], dict):
            return {k: np.asarray([r[k] for r in result]) for k in result[0]}
        return np.asarray(result)

    def rest(self, method: str, path: str, body: Any = None) -> Any:
        """One REST call; returns the decoded JSON or raises ServingError with the server's
        text, the canonical code of its HTTP status and ``http_status``."""
        if not self.rest_url:
            raise InvalidArgumentError(
                "This client has no rest_url: create it with ServingClient(grpc_target, rest_url)"
            )
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.rest_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with (
            transport_errors(self.rest_url),
            urllib.request.urlopen(request, timeout=self.timeout) as reply,
        ):
            return json.loads(reply.read())

    def status(
        self, *, model_name: str | None = None, version: int | None = None
    ) -> list[VersionStatus]:
        """``GetModelStatus``: the model's versions, newest first."""
        request = get_model_status_pb2.GetModelStatusRequest()
        self._fill_spec(request.model_spec, self._name(model_name), version, None, None)
        response = self._call(self._model_stub.GetModelStatus, request)
        return sorted(
            (
                VersionStatus(
                    s.version,
                    STATE_NAMES.get(s.state, str(s.state)),
                    _code_name(s.status.error_code),
                    s.status.error_message,
                )
                for s in response.model_version_status
            ),
            key=lambda s: s.version,
            reverse=True,
        )

    def metadata(
        self,
        *,
        model_name: str | None = None,
        version: int | None = None,
        label: str | None = None,
    ) -> dict[str, Signature]:
        """``GetModelMetadata``: the served version's signatures."""
        return dict(self._metadata(self._target(model_name, version, label))[1])

    def _metadata(self, target: Target) -> tuple[int | None, dict[str, Signature]]:
        """``GetModelMetadata`` for ``target``: the version described (``None`` if the server
        does not say) and its signatures, which predictions are then built from."""
        name, version, label = target
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._fill_spec(request.model_spec, name, version, label, None)
        response = self._call(self._predict_stub.GetModelMetadata, request)
        signature_def_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_def_map)
        signatures = {
            k: v
            for k, v in signatures_from_meta_graph(signature_def_map).items()
            if not k.startswith("__")  # no init ops
        }
        served = _served_version(response)
        if served is not None:
            self._signatures.learn(target, served, signatures)
        return served, signatures

    def reload_config(
        self, configs: Sequence[ModelConfig], *, timeout: float | None = None
    ) -> ConfigReload:
        """``HandleReloadConfigRequest``: make ``configs`` the server's whole model list; return
        what was sent and how to send it by hand (:class:`~tfserve_nb.by_hand.ConfigReload`)."""
        request = model_management_pb2.ReloadConfigRequest()
        request.config.CopyFrom(to_server_config(configs))
        self._call(self._model_stub.HandleReloadConfigRequest, request, timeout)
        self._signatures.clear()
        return config_reload(configs, self.grpc_target)

    def wait_until_available(
        self,
        version: int | None = None,
        *,
        model_name: str | None = None,
        timeout: float = 60.0,
    ) -> int:
        """Poll ``GetModelStatus`` until ``version`` (or any version) is AVAILABLE; return it.

        Raises ServingError at once if that version's load failed (END with an error), and
        ServerTimeoutError with the states seen when ``timeout`` passes.
        """
        seen: list[VersionStatus] | str = "no answer yet"

        def available() -> int | None:
            nonlocal seen
            try:
                statuses = self.status(model_name=model_name)
            except ServingError as exc:
                if exc.code not in ("NOT_FOUND", "UNAVAILABLE"):
                    raise
                seen = exc.message
                return None
            seen = statuses
            for s in statuses:
                if version is not None and s.version != version:
                    continue
                if s.state == "AVAILABLE":
                    return s.version
                if version is not None and s.state == "END" and s.error_code != "OK":
                    raise serving_error(s.error_code, s.error_message)
            return None

        def timed_out() -> ServerTimeoutError:
            what = f"version {version}" if version is not None else "a version"
            return ServerTimeoutError(
                f"{what} of model {self._name(model_name)!r} did not become AVAILABLE "
                f"within {timeout:g} s; last status: {seen}"
            )

        return wait_until(available, timeout, timed_out=timed_out, interval=STATUS_POLL_SECONDS)


def _code_name(value: int) -> str:
    """The canonical name of a status code number (``"NOT_FOUND"``); the number itself, as
    text, for one this package does not know."""
    try:
        return Code(value).name
    except ValueError:
        return str(value)


def _served_version(response: Any) -> int | None:
    """The version a ``PredictResponse`` or ``GetModelMetadataResponse`` comes from, if said."""
    spec = response.model_spec
    return spec.version.value if spec.HasField("version") else None


def _pick(signatures: Mapping[str, Signature], signature_name: str | None) -> Signature:
    """``signature_name`` (default ``serving_default``) of ``signatures``, or upstream's
    FAILED_PRECONDITION naming the ones there are."""
    key = signature_name or DEFAULT_SERVING_SIGNATURE_DEF_KEY
    if key not in signatures:
        raise ServingError(
            "FAILED_PRECONDITION",
            f'Serving signature key "{key}" not found. Available: {sorted(signatures)}',
        )
    return signatures[key]
