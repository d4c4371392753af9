"""Servables: what a loaded version is.

:mod:`.signature` describes signatures without TensorFlow; :mod:`.saved_model` is the one serving
module that imports TensorFlow (it loads a SavedModel and runs its signatures).
"""
