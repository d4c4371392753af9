"""Server-side request batching (``--enable_batching``), after TF Serving's ``batching/``.

Framework-free: numpy and protobuf only, no TensorFlow or gRPC. One concept per module:

- :mod:`.batching_parameters` — the ``--batching_parameters_file`` text proto, its upstream
  defaults and validation.
- :mod:`.batch_scheduler` — the shared pool of batch threads and the per-(model, version,
  signature) queue that merges requests along dimension 0, pads and splits the results back.
- :mod:`.batching_util` — splitting a request to fit, rounding to an allowed batch size, padding.
- :mod:`.metrics` — upstream's batching metrics and the hook the scheduler reports them through.
"""
