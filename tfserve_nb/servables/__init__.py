"""Servables: what a loaded version is, and how its signatures answer.

:mod:`.signature` describes signatures without TensorFlow; :mod:`.saved_model` loads a
SavedModel and runs its signatures, with the custom ops its graph needs registered first
(:mod:`.custom_ops`: TF Text's, as upstream links them in); :mod:`.tflite_model` serves a
version's ``model.tflite`` the same way with TF Lite (``--prefer_tflite_model``). On top of
them, after TF Serving's ``servables/tensorflow/``: :mod:`.classifier`, :mod:`.regressor` and
:mod:`.multi_inference` answer requests made of serialized ``tf.Example`` (with :mod:`.util`),
and :mod:`.saved_model_warmup` replays a version's warmup requests. Of the serving code, only
this package imports TensorFlow itself (and the profiler service, which starts TensorFlow's).
"""
