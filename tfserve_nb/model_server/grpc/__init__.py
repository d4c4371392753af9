"""The gRPC front-end: ``PredictionService`` and ``ModelService`` servicers (:mod:`.services`),
the parsing of ``--grpc_channel_arguments`` (:mod:`.channel_arguments`), and the profiler
service proxy on the same port (:mod:`.profiler_service`)."""
