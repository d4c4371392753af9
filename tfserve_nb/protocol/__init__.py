"""What client and server share of TF Serving's protocol, with no server code.

- :mod:`.signature` — framework-free descriptions of a signature (``SignatureDef``) and its
  tensors, read from a ``MetaGraphDef`` or a ``SignatureDefMap``.
- :mod:`.tensor_proto` — numpy arrays to and from ``TensorProto``, as TF Serving encodes them.
- :mod:`.rest_paths` — the paths of the REST API (``/v1/models/NAME[/versions/N|/labels/L]``).

Status codes are :mod:`tfserve_nb.core.status`'s (``tensorflow::error::Code``).
"""
