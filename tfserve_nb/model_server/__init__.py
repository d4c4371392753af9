"""The embedded model server: server core, gRPC and REST front-ends, and its command line.

``python -m tfserve_nb.model_server`` takes ``tensorflow_model_server``'s flags.
"""
