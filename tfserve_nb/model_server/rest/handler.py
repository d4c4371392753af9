"""REST front-end: routes ``/v1/models/...`` requests to the server core.

After TF Serving's ``http_rest_api_handler.cc``, ``http_rest_api_util.cc`` and ``http_server.cc``:
the same routes (case-insensitive, names and labels URL-decoded), the same JSON bodies, and errors
as ``{"error": "..."}`` (never truncated: only gRPC cuts long texts) with the HTTP status of their
code. :meth:`HttpRestApiHandler.process` is transport-free (method, path, headers, body in;
status, headers, body out) so it is testable without sockets; :mod:`.http_server` puts it on a
socket.

Two upstream quirks are kept on purpose: the verb after ``:`` matches case-insensitively but is
then compared exactly, so ``:PREDICT`` is a malformed request; likewise ``/METADATA`` answers
the model status.

``--rest_api_timeout_in_ms``: upstream passes the deadline to the TensorFlow session running the
model, which answers DEADLINE_EXCEEDED ``Timed out waiting for notification`` (504). Here the
model runs on a bounded pool of inference threads (``--rest_api_num_threads``, default four per
CPU) and the request thread waits at most the deadline; a timed-out run cannot be cancelled
inside TensorFlow, so it finishes on its pool thread, holding its servable version, and its
result is dropped. No thread is created per request. :meth:`HttpRestApiHandler.process_async`
(the HTTP server's entry) keeps that contract with one hand-off instead of two: the whole
request runs on a pool thread, the model inline, and the event loop answers 504 at the
deadline, which counts the wait for a pool thread and the model run, not JSON decoding.

Compressed bodies are inflated by :mod:`.content_encoding`; the JSON codec is
:mod:`.request_document` (parsing), :mod:`.predict_request`, :mod:`.predict_response`,
:mod:`.examples` (classify and regress) and :mod:`.error_response`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote

from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    regression_pb2,
)

from ...core.status import (
    HTTP_STATUS,
    Code,
    ServingStatusError,
    invalid_argument,
)
from ...servables import predict_util
from .. import service_impls
from ..monitoring import METRICS
from ..server_core import ServerCore
from .content_encoding import decompress
from .error_response import encode_error
from .examples import decode_examples, encode_classify_results, encode_regress_results
from .predict_request import decode_predict_request
from .predict_response import encode_predict_response
from .request_document import parse_json, signature_name

log = logging.getLogger(__name__)
T = TypeVar("T")

_PREDICTION_API = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE,
)
_MODEL_STATUS_API = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE,
)
_HANDLED_PATH = re.compile(r"/v1/.*", re.IGNORECASE)
_APIS = ("classify", "regress", "predict")
_INT64_MAX = 2**63 - 1
DEADLINE_EXCEEDED_MESSAGE = "Timed out waiting for notification"
"""What TensorFlow's session says when a run outlives ``RunOptions.timeout_in_ms``."""
SHUTTING_DOWN_MESSAGE = "The server is shutting down"
JSON_HEADERS = (("Content-Type", "application/json"),)
CORS_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "POST, GET"),
    ("Access-Control-Allow-Headers", "Content-Type"),
)


class Headers(Protocol):
    """A request's headers, looked up by name case-insensitively (``http.client`` headers, or a
    dict in tests)."""

    def get(self, name: str, default: str, /) -> str: ...


@dataclass
class RestResponse:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    model_name: str = ""
    method: str = ""
    code: Code = Code.OK
    version: int | None = None


class _InlineRun:
    """One request of :meth:`HttpRestApiHandler.process_async`: what its pool thread and the
    event loop waiting for it share, under :attr:`lock`. ``state`` goes ``queued`` (not on a
    thread yet) -> ``running`` -> ``done`` (the thread's answer stands) or ``expired`` (the
    loop answered 504; the thread's answer is dropped)."""

    __slots__ = (
        "lock",
        "model_started",
        "on_model_start",
        "picked",
        "response",
        "start",
        "state",
        "submitted",
    )

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state = "queued"
        self.submitted = time.monotonic()
        self.start = time.perf_counter()
        self.picked = 0.0
        self.model_started: float | None = None
        self.on_model_start: Callable[[], None] | None = None
        self.response: RestResponse | None = None


def _proto_json(message: Any) -> str:
    return json_format.MessageToJson(message, always_print_fields_with_no_presence=True, indent=1)


def _int_version(text: str) -> int:
    """``text`` (digits) as an int64 version, as ``absl::SimpleAtoi`` reads it."""
    version = int(text)
    if version > _INT64_MAX:
        raise invalid_argument(f"Failed to convert version: {text} to numeric.")
    return version


class HttpRestApiHandler:
    """Answers REST requests against ``core``. Thread-safe.

    ``extra_routes`` maps exact GET paths (e.g. the Prometheus metrics path) to callables
    returning ``(content_type, body)``. ``timeout_in_ms`` > 0 bounds how long an inference may
    run (``--rest_api_timeout_in_ms``; 0 or less: no deadline, the model runs on the request
    thread); ``num_threads`` sizes the inference pool (0: four per CPU, like upstream's
    ``--rest_api_num_threads``). Call :meth:`close` when done.
    """

    def __init__(
        self,
        core: ServerCore,
        *,
        enable_cors: bool = False,
        extra_routes: Mapping[str, Callable[[], tuple[str, bytes]]] | None = None,
        timeout_in_ms: int = 30000,
        num_threads: int = 0,
    ) -> None:
        self.core = core
        self.enable_cors = enable_cors
        self.extra_routes = dict(extra_routes or {})
        self.timeout = timeout_in_ms / 1000 if timeout_in_ms > 0 else None
        self._inference = ThreadPoolExecutor(
            num_threads or 4 * (os.cpu_count() or 1), thread_name_prefix="rest-inference"
        )
        self._local = threading.local()  # .run: the _InlineRun a pool thread is running

    def close(self) -> None:
        """Stop the inference pool (runs in progress finish; queued ones are dropped)."""
        self._inference.shutdown(wait=False, cancel_futures=True)

    def _run_with_deadline(self, work: Callable[[], T], handle: contextlib.ExitStack) -> T:
        """Run ``work`` (the model part of a request) and return its result, then close
        ``handle`` (the servable handle ``work`` uses), within the REST deadline.

        Past the deadline raise DEADLINE_EXCEEDED ``Timed out waiting for notification``. A run
        that has not started is dropped; one that has keeps ``handle`` until it ends, so its
        version is not unloaded under it.
        """
        run: _InlineRun | None = getattr(self._local, "run", None)
        if run is not None:  # process_async: already on a pool thread, the loop keeps time
            with run.lock:
                run.model_started = time.monotonic()
                notify, run.on_model_start = run.on_model_start, None
            if notify is not None:
                notify()
        if self.timeout is None or run is not None:
            with handle:
                return work()

        def job() -> T:
            with handle:
                return work()

        try:
            future = self._inference.submit(job)
        except RuntimeError:  # the pool is shut down: the server is stopping
            handle.close()
            raise ServingStatusError(Code.UNAVAILABLE, SHUTTING_DOWN_MESSAGE) from None
        try:
            return future.result(timeout=self.timeout)
        except TimeoutError:
            if future.cancel():
                handle.close()
            raise ServingStatusError(Code.DEADLINE_EXCEEDED, DEADLINE_EXCEEDED_MESSAGE) from None

    async def process_async(
        self, method: str, path: str, headers: Headers, body: bytes
    ) -> RestResponse:
        """:meth:`process` for an event loop: the same answers, the whole request on one pool
        thread with its model inline. With a deadline, the loop answers 504 when the time
        waiting for a thread plus the model run exceeds it (a request still waiting is
        dropped unrun; a model run goes on, holding its version, and its answer is dropped)."""
        loop = asyncio.get_running_loop()
        run = _InlineRun()
        answer: asyncio.Future[RestResponse] = loop.create_future()
        try:
            future = self._inference.submit(self._process_inline, run, method, path, headers, body)
        except RuntimeError:  # the pool is shut down: the server is stopping
            return self._error_response(run, Code.UNAVAILABLE, SHUTTING_DOWN_MESSAGE)

        def settle(done: Future[RestResponse]) -> None:
            if answer.done():
                return
            if done.cancelled():  # dropped by close() (a deadline answers before cancelling)
                answer.set_result(
                    self._error_response(run, Code.UNAVAILABLE, SHUTTING_DOWN_MESSAGE)
                )
            else:
                answer.set_result(done.result())  # process never raises

        future.add_done_callback(lambda done: _call_soon(loop, settle, done))
        if self.timeout is None:
            return await answer
        timeout = self.timeout
        timers: list[asyncio.TimerHandle] = []

        def check() -> None:
            """At the deadline: drop a queued request, wait for one still decoding, re-arm for
            one whose decoding pushed its deadline back, answer 504 for the rest."""
            if answer.done():
                return
            with run.lock:
                if run.state == "queued" and future.cancel():
                    run.state = "expired"
                elif run.state == "done":
                    return  # its answer is on the way
                elif run.model_started is None:  # decoding: time it from the model's start
                    run.on_model_start = lambda: _call_soon(loop, check)
                    return
                else:
                    deadline = run.model_started + timeout - (run.picked - run.submitted)
                    if time.monotonic() < deadline:
                        timers.append(loop.call_at(deadline, check))
                        return
                    run.state = "expired"
            answer.set_result(
                self._error_response(run, Code.DEADLINE_EXCEEDED, DEADLINE_EXCEEDED_MESSAGE)
            )

        timers.append(loop.call_at(run.submitted + timeout, check))
        try:
            return await answer
        finally:
            for timer in timers:
                timer.cancel()

    def _process_inline(
        self, run: _InlineRun, method: str, path: str, headers: Headers, body: bytes
    ) -> RestResponse:
        """A pool thread's part of :meth:`process_async`."""
        with run.lock:
            run.state = "running"
            run.picked = time.monotonic()
        self._local.run = run
        try:
            return self.process(method, path, headers, body)
        finally:
            self._local.run = None

    def _error_response(self, run: _InlineRun, code: Code, message: str) -> RestResponse:
        """The answer :meth:`process` gives when a request fails with ``code``, recorded as
        it records one; for the loop to answer in the pool thread's place."""
        known = run.response
        response = RestResponse(
            HTTP_STATUS[code],
            encode_error(message),
            list(JSON_HEADERS),
            model_name=known.model_name if known else "",
            method=known.method if known else "",
            code=code,
        )
        if self.enable_cors:
            response.headers.extend(CORS_HEADERS)
        METRICS.record_request(
            response.model_name,
            response.method,
            "REST",
            code,
            (time.perf_counter() - run.start) * 1e6,
            None,
        )
        return response

    def process(self, method: str, path: str, headers: Headers, body: bytes) -> RestResponse:
        """Handle one request; never raises."""
        path = path.split("?", 1)[0]
        if method == "GET" and path in self.extra_routes:
            content_type, payload = self.extra_routes[path]()
            return RestResponse(200, payload, [("Content-Type", content_type)])
        if not _HANDLED_PATH.fullmatch(path):
            return RestResponse(
                404, b"<html><body>Not Found</body></html>", [("Content-Type", "text/html")]
            )
        start = time.perf_counter()
        if method == "OPTIONS":  # CORS preflight: no handler runs, so no body and no JSON type
            response = RestResponse(200, b"")
            if not re.search(r"https?://", headers.get("Origin", "")):
                response.code = Code.FAILED_PRECONDITION
                log.debug("Origin header is missing in CORS preflight")
        else:
            response = RestResponse(200, b"", list(JSON_HEADERS))
            run: _InlineRun | None = getattr(self._local, "run", None)
            if run is not None:
                run.response = response  # its model name and API, should the loop answer
            try:
                response.body = self._dispatch(method, path, headers, body, response)
            except ServingStatusError as exc:
                response.code = exc.code
                response.body = encode_error(exc.message)
            except Exception as exc:  # a bug must not take the server down
                log.exception("REST %s %s failed", method, path)
                response.code = Code.INTERNAL
                response.body = encode_error(f"{type(exc).__name__}: {exc}")
        response.status = HTTP_STATUS[response.code]
        if self.enable_cors:
            response.headers.extend(CORS_HEADERS)
        inline: _InlineRun | None = getattr(self._local, "run", None)
        if inline is not None:
            with inline.lock:
                if inline.state == "expired":
                    return response  # the loop answered 504 and recorded it
                inline.state = "done"
        METRICS.record_request(
            response.model_name,
            response.method,
            "REST",
            response.code,
            (time.perf_counter() - start) * 1e6,
            response.version,
        )
        return response

    def _dispatch(
        self,
        method: str,
        path: str,
        headers: Headers,
        body: bytes,
        response: RestResponse,
    ) -> bytes:
        malformed = invalid_argument(f"Malformed request: {method} {path}")
        routes = {"POST": _PREDICTION_API, "GET": _MODEL_STATUS_API}
        match = routes[method].fullmatch(path) if method in routes else None
        if not match:
            raise malformed
        name, version_text, label, last = match.groups()
        name = unquote(name or "")
        label = unquote(label) if label else None
        version = _int_version(version_text) if version_text else None
        response.model_name = name
        if version is not None and label is not None:
            raise invalid_argument(
                f"Both model version ({version}) and model version label ({label}) "
                "cannot be supplied."
            )
        if method == "GET":
            if not name:
                raise invalid_argument("Missing model name in request.")
            return (
                self._metadata(name, version, label)
                if last == "metadata"
                else self._status(name, version)
            )
        if last not in _APIS:  # matched case-insensitively, compared exactly (upstream)
            raise malformed
        response.method = last
        body = decompress(body, headers.get("Content-Encoding", ""))
        if response.method == "predict":
            return self._predict(name, version, label, body, response)
        return self._classify_or_regress(response.method, name, version, label, body, response)

    def _status(self, name: str, version: int | None) -> bytes:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        if version is not None:
            request.model_spec.version.value = version
        return _proto_json(service_impls.get_model_status(self.core, request)).encode()

    def _metadata(self, name: str, version: int | None, label: str | None) -> bytes:
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            metadata_field=[service_impls.SIGNATURE_DEF]
        )
        _fill_model_spec(request.model_spec, name, version, label)
        result = service_impls.get_model_metadata(self.core, request)
        signature_def_map = get_model_metadata_pb2.SignatureDefMap()
        result.metadata[service_impls.SIGNATURE_DEF].Unpack(signature_def_map)
        options = {
            "always_print_fields_with_no_presence": True,
            "preserving_proto_field_name": True,
            "indent": 1,
        }
        return (
            "{\n"
            f'"model_spec":{json_format.MessageToJson(result.model_spec, **options)},\n'
            f'"metadata": {{"signature_def": '
            f"{json_format.MessageToJson(signature_def_map, **options)}}}\n"
            "}\n"
        ).encode()

    def _predict(
        self,
        name: str,
        version: int | None,
        label: str | None,
        body: bytes,
        response: RestResponse,
    ) -> bytes:
        doc = parse_json(body)
        requested_signature = signature_name(doc)
        with contextlib.ExitStack() as handle:
            served_version, servable = handle.enter_context(
                self.core.servable(name, version, label)
            )
            key = requested_signature or predict_util.DEFAULT_SERVING_SIGNATURE_DEF_KEY
            signature = servable.signatures.get(key)
            if signature is None:
                raise invalid_argument(
                    f'Serving signature name: "{key}" not found in signature def'
                )
            inputs, request_format = decode_predict_request(doc, signature)
            result = self._run_with_deadline(
                lambda: predict_util.run_predict(
                    served_version,
                    servable,
                    inputs,
                    key,
                    method_name_check=self.core.options.enable_signature_method_name_check,
                ),
                handle.pop_all(),
            )
        response.version = result.version
        return encode_predict_response(result.outputs, request_format)

    def _classify_or_regress(
        self,
        api: str,
        name: str,
        version: int | None,
        label: str | None,
        body: bytes,
        response: RestResponse,
    ) -> bytes:
        """``ProcessClassifyRequest`` / ``ProcessRegressRequest``: the body becomes a
        ``ClassificationRequest`` or ``RegressionRequest`` (its JSON errors come first), which
        is answered as over gRPC and written as ``{"results": ...}``."""
        doc = parse_json(body)
        request_input = decode_examples(doc)
        classify = api == "classify"
        request = (
            classification_pb2.ClassificationRequest()
            if classify
            else regression_pb2.RegressionRequest()
        )
        _fill_model_spec(request.model_spec, name, version, label)
        request.model_spec.signature_name = signature_name(doc)
        request.input.CopyFrom(request_input)
        run = service_impls.classify if classify else service_impls.regress
        answer = self._run_with_deadline(lambda: run(self.core, request), contextlib.ExitStack())
        response.version = answer.model_spec.version.value
        if classify:
            return encode_classify_results(answer.result)
        return encode_regress_results(answer.result)


def _fill_model_spec(model_spec: Any, name: str, version: int | None, label: str | None) -> None:
    """``FillModelSpecWithNameVersionAndLabel``: the model a REST path names."""
    model_spec.name = name
    if version is not None:
        model_spec.version.value = version
    if label is not None:
        model_spec.version_label = label


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., Any], *args: Any) -> None:
    """``loop.call_soon_threadsafe``, quiet if the loop has closed (the server stopped)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)
