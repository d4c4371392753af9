"""The gRPC front-end: ``PredictionService`` and ``ModelService`` servicers, the parsing of
``--grpc_channel_arguments``, and the profiler service proxy on the same port."""
