"""export_model(model, "s3://...") against moto's S3 server: the version TensorFlow loads back
from what was uploaded, its number, the refusals, no local leftovers."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import tensorflow as tf

from tests.helpers import models
from tests.helpers.s3_server import S3Server
from tfserve_nb.errors import ExportError, VersionExistsError
from tfserve_nb.export import export_model
from tfserve_nb.export.exporter import EXPORT_WORK_PREFIX
from tfserve_nb.storage import push


def answer(path: Path, x: float) -> float:
    """half_plus_two's answer for ``x`` from the SavedModel TensorFlow loads from ``path``."""
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    return float(serve(x=tf.constant([[x]]))["y"][0, 0])


def work_folders() -> list[Path]:
    return sorted(Path(tempfile.gettempdir()).glob(f"{EXPORT_WORK_PREFIX}*"))


def test_export_model_to_s3_writes_the_next_version_there(
    s3_server: S3Server, s3_bucket: str, half_plus_two_base: Path, tmp_path: Path
) -> None:
    uri = f"s3://{s3_bucket}/models/half_plus_two"
    push(half_plus_two_base, uri)  # version 1 is there
    fs = s3_server.filesystem()
    fs.pipe_file(f"{s3_bucket}/models/half_plus_two/2/variables/x", b"a partial version 2")
    folders_before = work_folders()

    exported = export_model(models.half_plus_two(2), uri, warmup_examples=[[1.0]])

    assert (exported.name, exported.version, exported.path, exported.base_path) == (
        "half_plus_two",
        3,  # partial 2 counts: one above the highest present
        f"{uri}/3",
        uri,
    )
    assert sorted(exported.signature.inputs) == ["x"]
    assert work_folders() == folders_before  # the local export is gone
    downloaded = tmp_path / "3"
    fs.get(f"{s3_bucket}/models/half_plus_two/3", str(downloaded), recursive=True)
    assert answer(downloaded, 1.0) == 3.5  # model 2 is 0.5 * x + 3, as TensorFlow loads it
    assert (downloaded / "assets.extra" / "tf_serving_warmup_requests").is_file()


def test_export_model_to_s3_never_overwrites(
    s3_bucket: str, half_plus_two_base: Path, half_plus_two_models: Any
) -> None:
    uri = f"s3://{s3_bucket}/half_plus_two"
    push(half_plus_two_base, uri)
    model = half_plus_two_models.models[1]

    with pytest.raises(VersionExistsError, match=f"Version 1 already exists at {uri}/1"):
        export_model(model, uri, version=1)
    with pytest.raises(ExportError, match="Versions in object storage are never overwritten"):
        export_model(model, uri, overwrite=True)
    with pytest.raises(ExportError, match="storage_options apply to base paths in object storage"):
        export_model(model, half_plus_two_base, storage_options={"anon": True})
