"""Shared fixtures. Sections, in order: environment (the line below the imports' start),
test tiers (markers set at collection), helpers, exported test models (session-scoped), base
paths a test may modify (function-scoped).

Conventions for adding fixtures here:

- Anything costly (training, exporting, starting a server) is session-scoped and cached under
  ``tmp_path_factory``; what a test may modify is function-scoped and copied into ``tmp_path``.
- Session-scoped artifacts are read-only by convention: never write into a ``ModelVersions``
  directory; make a base path of your own with :meth:`ModelVersions.make_base_path`.
- Model generators live in ``tests/helpers/models.py``; fixtures only call them and export the
  result.
- Import TensorFlow, Keras and ``models`` inside fixtures, not here: pure unit tests (``core/``)
  must not pay for TensorFlow.

Tiers: ``scripts/test`` runs every test; ``scripts/check`` runs the fast tier,
``-m "not docker and not browser and not server and not models"``. ``server`` and ``models`` are
set here at collection (:func:`pytest_collection_modifyitems`), never by hand: ``models`` on every
test whose fixtures export TensorFlow test models (:data:`MODEL_FIXTURES`), ``server`` on every
test of the modules and folders in :data:`SERVER_MODULES`. A new test module that starts a model
server or kernel process belongs in :data:`SERVER_MODULES`.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow

import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # importing TensorFlow costs seconds; tests that need no model skip it
    import keras

    from tests.helpers import models

# --- test tiers ----------------------------------------------------------------------------------

MODEL_FIXTURES = frozenset({"model_cache", "testdata"})
"""Fixtures that build and export TensorFlow test models (every ``*_models``/``*_base`` fixture
below asks for ``model_cache``; ``testdata`` is the upstream suite's)."""

SERVER_MODULES = (
    "backends/test_local.py",
    "backends/test_standby.py",
    "bench/test_bench.py",
    "bench/test_native_load.py",
    "bench/test_mlflow_peer.py",
    "deploy/test_server_state.py",
    "docker/test_cluster_path.py",  # the embedded server and moto's S3 server
    "model_server/test_batching_server.py",
    "model_server/test_conformance_",  # every conformance suite
    "model_server/test_embedded_imports.py",
    "model_server/test_monitoring.py",
    "model_server/test_server_process.py",
    "reliability/",
    "storage/test_export_to_storage.py",  # these four: moto's S3 server (helpers/s3_server.py)
    "storage/test_interrupted_push.py",
    "storage/test_push.py",
    "storage/test_store_errors.py",
    "test_client.py",
    "test_commands.py",
    "test_handle.py",
    "upstream/",
    "widgets/test_dashboard.py",
    "widgets/test_kernels.py",
    "widgets/test_protocol_by_hand.py",
)
"""Path prefixes, relative to ``tests/``, of the modules whose tests start model server processes
(embedded, local binary, ``tfserve-nb model-server``) or notebook kernels."""

TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test ``models`` and/or ``server`` as :data:`MODEL_FIXTURES` and
    :data:`SERVER_MODULES` say (notebooks, outside ``tests/``, are left as they are)."""
    for item in items:
        path = item.path.resolve()
        if not path.is_relative_to(TESTS):
            continue
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.models)
        if path.relative_to(TESTS).as_posix().startswith(SERVER_MODULES):
            item.add_marker(pytest.mark.server)


# --- helpers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelVersions:
    """Versions of one test model, each exported once per session by ``export_model``.

    ``exports[v]`` is the pristine SavedModel directory of version ``v`` (do not modify it);
    ``models[v]`` the Keras model it was exported from, to compare served answers against.
    """

    name: str
    exports: Mapping[int, Path]
    models: Mapping[int, keras.Model]

    def make_base_path(
        self, parent: Path, versions: Iterable[int] = (1,), name: str | None = None
    ) -> Path:
        """A fresh base path ``parent/<name>`` holding copies of ``versions``; returns it."""
        base = parent / (name or self.name)
        base.mkdir(parents=True, exist_ok=True)
        for version in versions:
            self.add_version(base, version)
        return base

    def add_version(self, base: Path, version: int, as_version: int | None = None) -> Path:
        """Copy ``version`` into ``base`` as ``as_version`` (default: the same number).

        The copy is written to a non-numeric sibling and renamed into place, as ``export_model``
        does, so a server polling ``base`` never sees it half-written. Returns the new directory.
        """
        target = base / str(as_version if as_version is not None else version)
        if target.exists():
            raise FileExistsError(f"{target} already exists")
        staging = Path(tempfile.mkdtemp(prefix=".tmp-copy-", dir=base))
        shutil.copytree(self.exports[version], staging, dirs_exist_ok=True)
        os.rename(staging, target)
        return target


def _export_versions(
    cache: Path,
    name: str,
    build: Callable[[int], keras.Model],
    versions: Iterable[int],
    **options: Any,
) -> ModelVersions:
    """Build and export each version under ``cache/name`` (``options`` go to ``export_model``)."""
    from tfserve_nb.export import export_model

    built = {version: build(version) for version in versions}
    exports = {
        version: export_model(model, cache / name, version, **options).path
        for version, model in built.items()
    }
    return ModelVersions(name, exports, built)


# --- exported test models (session-scoped, built once) ------------------------------------------


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Session directory holding every pristine exported test model."""
    return tmp_path_factory.mktemp("exported_models")


@pytest.fixture(scope="session")
def digits_data() -> models.DigitsData:
    """The digits train/test split the digits models were trained and scored on."""
    from tests.helpers import models

    return models.digits_data()


@pytest.fixture(scope="session")
def digits_models(model_cache: Path) -> ModelVersions:
    """``digits``: version 1 (small, 88 % test accuracy) and version 2 (improved, 97 %)."""
    from tests.helpers import models

    settings: dict[int, dict[str, Any]] = {1: {}, 2: {"epochs": 20, "hidden_units": 64}}
    return _export_versions(
        model_cache, "digits", lambda v: models.digits_classifier(**settings[v])[0], settings
    )


@pytest.fixture(scope="session")
def half_plus_two_models(model_cache: Path) -> ModelVersions:
    """``half_plus_two``: version 1 answers ``0.5 * x + 2``, version 2 ``0.5 * x + 3``."""
    from tests.helpers import models

    return _export_versions(model_cache, "half_plus_two", models.half_plus_two, (1, 2))


@pytest.fixture(scope="session")
def multi_io_models(model_cache: Path) -> ModelVersions:
    """``multi_io``: version 1, inputs ``a``/``b``, outputs ``sum``/``doubled``."""
    from tests.helpers import models

    return _export_versions(model_cache, "multi_io", lambda _: models.multi_io_model(), (1,))


@pytest.fixture(scope="session")
def image_cnn_models(model_cache: Path) -> ModelVersions:
    """``image_cnn``: version 1, input ``image`` float32[?,28,28,1], untrained."""
    from tests.helpers import models

    return _export_versions(model_cache, "image_cnn", lambda _: models.image_cnn(), (1,))


@pytest.fixture(scope="session")
def half_plus_two_examples_models(model_cache: Path) -> ModelVersions:
    """``half_plus_two_examples``: version 1 of ``half_plus_two`` with TF Serving's tf.Example
    test signatures ``classify_x_to_y`` and ``regress_x_to_y`` beside ``serving_default``."""
    from tests.helpers import models

    return _export_versions(
        model_cache,
        "half_plus_two_examples",
        models.half_plus_two,
        (1,),
        signatures=models.half_plus_two_example_signatures(),
    )


@pytest.fixture(scope="session")
def color_models(model_cache: Path) -> ModelVersions:
    """``color``: version 1 of ``color_classifier`` with its tf.Example signatures
    ``classification`` (labels and scores) and ``scores`` beside ``serving_default``."""
    from tests.helpers import models

    return _export_versions(
        model_cache,
        "color",
        lambda _: models.color_classifier(),
        (1,),
        signatures=models.color_example_signatures(),
    )


@pytest.fixture(scope="session")
def dtypes_models(model_cache: Path) -> ModelVersions:
    """``dtypes``: version 1, one input per dtype of ``models.JSON_DTYPES``, echoed back."""
    from tests.helpers import models

    return _export_versions(model_cache, "dtypes", lambda _: models.dtypes_echo(), (1,))


@pytest.fixture(scope="session")
def float16_models(model_cache: Path) -> ModelVersions:
    """``float16``: version 1, one ``float16`` input echoed back (no JSON conversion exists)."""
    from tests.helpers import models

    return _export_versions(
        model_cache, "float16", lambda _: models.dtypes_echo(("float16",)), (1,)
    )


@pytest.fixture(scope="session")
def busy_wait_models(model_cache: Path) -> ModelVersions:
    """``busy_wait``: version 1, answers ``y = seconds`` after busy-waiting that long."""
    from tests.helpers import models

    return _export_versions(model_cache, "busy_wait", lambda _: models.busy_wait(), (1,))


@pytest.fixture(scope="session")
def sequential_models(model_cache: Path) -> ModelVersions:
    """``sequential``: versions 1 and 2 of ``models.sequential``, built one after the other,
    so their input aliases differ (``keras_tensor_<n>``, a new ``n`` each)."""
    from tests.helpers import models

    return _export_versions(model_cache, "sequential", models.sequential, (1, 2))


@pytest.fixture(scope="session")
def column_names_models(model_cache: Path) -> ModelVersions:
    """``column_names``: version 1, inputs ``petal-width``, ``f.x`` and ``2nd``."""
    from tests.helpers import models

    return _export_versions(model_cache, "column_names", lambda _: models.column_names(), (1,))


@pytest.fixture(scope="session")
def tabular_models(model_cache: Path) -> ModelVersions:
    """``tabular``: version 1, inputs ``flat`` [?], ``column`` [?,1] and ``vector`` [?,3]."""
    from tests.helpers import models

    return _export_versions(model_cache, "tabular", lambda _: models.tabular(), (1,))


# --- base paths a test may modify (function-scoped copies) ---------------------------------------


@pytest.fixture
def digits_base_path(tmp_path: Path, digits_models: ModelVersions) -> Path:
    """``tmp_path/digits`` with version 1; add version 2 with
    ``digits_models.add_version(digits_base_path, 2)``."""
    return digits_models.make_base_path(tmp_path)


@pytest.fixture
def half_plus_two_base(tmp_path: Path, half_plus_two_models: ModelVersions) -> Path:
    """``tmp_path/half_plus_two`` with version 1; add version 2 with
    ``half_plus_two_models.add_version(half_plus_two_base, 2)``."""
    return half_plus_two_models.make_base_path(tmp_path)


@pytest.fixture
def multi_io_base(tmp_path: Path, multi_io_models: ModelVersions) -> Path:
    """``tmp_path/multi_io`` with version 1."""
    return multi_io_models.make_base_path(tmp_path)


@pytest.fixture
def image_cnn_base(tmp_path: Path, image_cnn_models: ModelVersions) -> Path:
    """``tmp_path/image_cnn`` with version 1."""
    return image_cnn_models.make_base_path(tmp_path)
