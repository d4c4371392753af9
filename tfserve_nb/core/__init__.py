"""Framework-free serving core, after TF Serving's ``core/``.

Nothing in this package imports TensorFlow, gRPC, Docker or ipywidgets: it is plain Python,
unit-tested with small fakes. One concept per module:

- :mod:`.status` — status codes and the error that carries one (``tensorflow::Status``).
- :mod:`.servable_id` — a servable's name and version.
- :mod:`.servable_state` — the lifecycle states a version passes through.
- :mod:`.loader` — how one version is loaded and unloaded.
- :mod:`.source` — what emits aspired versions.
- :mod:`.version_policy` — which versions of a stream are aspired (latest N, all, specific).
- :mod:`.aspired_version_policy` — in which order to load and unload (availability-preserving).
- :mod:`.aspired_versions_manager` — acts on aspired versions and hands out servables.
- :mod:`.servable_state_monitor` — remembers every version's state, for ``GetModelStatus``.
- :mod:`.metric` — how a metric is declared (name, help, labels, buckets), as TensorFlow's
  ``monitoring`` does.
"""
