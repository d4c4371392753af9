"""The embedded model server: server core, gRPC and REST front-ends, and its command line.

``python -m tfserve_nb.model_server`` takes ``tensorflow_model_server``'s flags. One module per
part, in a request's order:

- :mod:`.server_core` — the served models, their config, labels, and request resolution.
- :mod:`.service_impls` — the protocol's operations on protobuf messages, for both front-ends.
- :mod:`.server` — the whole server in one process: core, gRPC, REST, config-file polling.
- :mod:`.main` — ``tensorflow_model_server``'s command line.
- :mod:`.shutdown` — when the server process stops, and that it does stop, in every state.
- :mod:`.monitoring` — ``--monitoring_config_file``: metrics on a Prometheus endpoint.
- :mod:`.grpc` — the gRPC front-end.
- :mod:`.rest` — the REST front-end and TF Serving's JSON codec.
"""
