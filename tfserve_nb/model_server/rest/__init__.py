"""The REST front-end: ``/v1/models/...`` on a maintained HTTP server (:mod:`.http_server`),
the handler that maps each path to the protocol's operations (:mod:`.handler`), and the JSON
codec of TF Serving's REST API."""
