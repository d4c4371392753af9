"""The REST front-end: ``/v1/models/...`` on a maintained HTTP server (:mod:`.http_server`),
the handler that maps each path to the protocol's operations (:mod:`.handler`, with
:mod:`.content_encoding` for compressed bodies), and the JSON codec of TF Serving's REST API
(``util/json_tensor.cc``), one module per concept, in a request's order:

- :mod:`.request_document`: the body as a JSON document (``ParseJson``), its ``signature_name``;
  it reads with :mod:`.json_reader` (rapidjson's reader and Python's ``json``) and
  :mod:`.numeric_arrays` (large arrays of numbers without a Python object per number), giving
  values as :mod:`.json_values` describes;
- :mod:`.predict_request` (``instances``/``inputs`` to arrays, each value by
  :mod:`.tensor_values`) and :mod:`.examples` (classify/regress: tf.Examples in, results out);
- :mod:`.predict_response` and :mod:`.error_response`, written by :mod:`.json_writer`
  (rapidjson's escapes, number formats and pretty layout).
"""
