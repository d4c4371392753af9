"""Fixtures of the ported upstream suite: upstream's ``testdata_dir`` (:class:`UpstreamTestdata`,
models generated once per session by ``upstream_models``) and its ``RunServer``
(:func:`model_servers`, servers shared by the tests of the module that ask for the same
arguments, as upstream shares them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path

import pytest
import upstream_models
from upstream_harness import ModelServers

GOOD_MODEL_CONFIG_TEMPLATE = """\
model_config_list: {
  config: {
    name: "half_plus_two",
    base_path: "${TEST_HALF_PLUS_TWO_DIR}",
    model_platform: "tensorflow"
  },
  config: {
    name: "half_plus_three",
    base_path: "${TEST_HALF_PLUS_THREE_DIR}",
    model_platform: "tensorflow"
  }
}
"""
"""Upstream's ``good_model_config.txt``, placeholders and all."""

BAD_MODEL_CONFIG = "improperly formatted file"
"""Upstream's ``bad_model_config.txt`` (no newline at its end)."""

MONITORING_CONFIG = """\
prometheus_config: {
  enable: true,
  path: "/monitoring/prometheus/metrics"
}
"""
"""Upstream's ``monitoring_config.txt``."""

BATCHING_CONFIG = """\
max_batch_size { value: 128 }
batch_timeout_micros { value: 0 }
max_enqueued_batches { value: 1000000 }
num_batch_threads { value: 8 }
"""
"""Upstream's ``batching_config.txt`` (``_TestPredict(batching_parameters_file=...)``)."""


class UpstreamTestdata:
    """Upstream's ``servables/tensorflow/testdata`` directory, generated on demand: each
    property is a model's base path (holding its one version directory) or a config file, made
    the first time a test asks for it. Read-only by convention, like upstream's runfiles."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _model(self, name: str, generate: Callable[[Path], Path], version: str) -> Path:
        base = self.root / name
        generate(base / version)
        return base

    def _file(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text)
        return path

    @cached_property
    def saved_model_half_plus_two_cpu(self) -> Path:
        """``_GetSavedModelBundlePath``."""
        return self._model(
            "saved_model_half_plus_two_cpu",
            upstream_models.saved_model_half_plus_two,
            upstream_models.VERSION_DIR,
        )

    @cached_property
    def saved_model_half_plus_two_tf2_cpu(self) -> Path:
        """``_GetSavedModelHalfPlusTwoTf2``."""
        return self._model(
            "saved_model_half_plus_two_tf2_cpu",
            upstream_models.saved_model_half_plus_two_tf2,
            upstream_models.VERSION_DIR,
        )

    @cached_property
    def saved_model_half_plus_three(self) -> Path:
        """``_GetSavedModelHalfPlusThreePath``."""
        return self._model(
            "saved_model_half_plus_three",
            upstream_models.saved_model_half_plus_three,
            upstream_models.VERSION_DIR,
        )

    @cached_property
    def saved_model_half_plus_two_tflite(self) -> Path:
        """``_GetTfLiteModelPath``."""
        return self._model(
            "saved_model_half_plus_two_tflite",
            upstream_models.saved_model_half_plus_two_tflite,
            upstream_models.VERSION_DIR,
        )

    @cached_property
    def saved_model_half_plus_two_tflite_with_sigdef(self) -> Path:
        """``_GetTfLiteModelWithSigDefPath``."""
        return self._model(
            "saved_model_half_plus_two_tflite_with_sigdef",
            lambda d: upstream_models.saved_model_half_plus_two_tflite(d, with_signature_def=True),
            upstream_models.VERSION_DIR,
        )

    @cached_property
    def saved_model_counter(self) -> Path:
        return self._model(
            "saved_model_counter", upstream_models.saved_model_counter, upstream_models.VERSION_DIR
        )

    @cached_property
    def tf_text_regression(self) -> Path:
        """``test_tf_text``'s model (version directory ``01``, as TF Text's script writes)."""
        return self._model("tf_text_regression", upstream_models.tf_text_regression, "01")

    @cached_property
    def good_model_config_template(self) -> Path:
        """``_GetGoodModelConfigTemplate``."""
        return self._file("good_model_config.txt", GOOD_MODEL_CONFIG_TEMPLATE)

    @cached_property
    def bad_model_config(self) -> Path:
        """``_GetBadModelConfigFile``."""
        return self._file("bad_model_config.txt", BAD_MODEL_CONFIG)

    @cached_property
    def monitoring_config(self) -> Path:
        """``_GetMonitoringConfigFile``."""
        return self._file("monitoring_config.txt", MONITORING_CONFIG)

    @cached_property
    def batching_config(self) -> Path:
        """``_GetBatchingParametersFile``."""
        return self._file("batching_config.txt", BATCHING_CONFIG)


@pytest.fixture(scope="session")
def testdata(tmp_path_factory: pytest.TempPathFactory) -> UpstreamTestdata:
    """Upstream's ``testdata_dir``, generated model by model as tests ask."""
    return UpstreamTestdata(tmp_path_factory.mktemp("upstream_testdata"))


@pytest.fixture(scope="module")
def model_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServers]:
    """Upstream's ``RunServer``: every server started for the module's tests, stopped at its
    end."""
    servers = ModelServers(tmp_path_factory.mktemp("upstream_servers"))
    try:
        yield servers
    finally:
        servers.stop_all()
