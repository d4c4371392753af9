"""Servables: what a loaded version is, and how its signatures answer.

:mod:`.servable` is the interface the request path is written against (signatures are described
without TensorFlow in :mod:`tfserve_nb.protocol.signature`); :mod:`.saved_model` loads a
SavedModel and runs its signatures, with the custom ops its graph needs registered first
(:mod:`.custom_ops`: TF Text's, as upstream links them in); :mod:`.tflite_model` serves a
version's ``model.tflite`` the same way with TF Lite (``--prefer_tflite_model``). On top of
them, after TF Serving's ``servables/tensorflow/``: :mod:`.predict_util` checks predict requests
for gRPC and REST alike; :mod:`.classifier`, :mod:`.regressor` and :mod:`.multi_inference`
answer requests made of serialized ``tf.Example`` (with :mod:`.util`); and
:mod:`.saved_model_warmup` replays a version's warmup requests, each run by
:mod:`.warmup_request`. Of the serving code, only this package imports TensorFlow itself (and
the profiler service, which starts TensorFlow's).
"""
