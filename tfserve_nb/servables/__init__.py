"""Servables: what a loaded version is, and how its signatures answer.

:mod:`.signature` describes signatures without TensorFlow; :mod:`.saved_model` loads a
SavedModel and runs its signatures. On top of it, after TF Serving's ``servables/tensorflow/``:
:mod:`.classifier`, :mod:`.regressor` and :mod:`.multi_inference` answer requests made of
serialized ``tf.Example`` (with :mod:`.util`), and :mod:`.saved_model_warmup` replays a version's
warmup requests. Of the serving code, only this package imports TensorFlow itself.
"""
