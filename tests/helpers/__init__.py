"""Code the test modules share, imported as ``tests.helpers.<module>`` (the repository root is on
``sys.path`` through ``[tool.pytest.ini_options] pythonpath``); nothing here is collected.

- ``server_process``: a model server as a real process (:class:`ServerProcess`, free ports).
- ``conformance``: TF Serving's client calls, deadline waits and config files the conformance,
  reliability and upstream suites use against a :class:`ServerProcess`.
- ``models``, ``tflite_models``: generators of the tiny test models (exported by the fixtures
  of ``tests/conftest.py``; TensorFlow is imported when they are).
- ``core_fakes``, ``servable_fakes``: small fakes for the framework-free ``core`` and the
  ``servables`` unit tests.
- ``waiting``: the tests' ``wait_until`` on :func:`tfserve_nb.waiting.wait_until`.
"""
