"""Custom ops are registered before a graph needing them is imported, as upstream's model server
has TF Text's linked in, and a graph needing ops of a package that is not installed fails to
load with TensorFlow's NOT_FOUND text and the package to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tensorflow as tf
from tensorflow.core.framework import op_def_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from tfserve_nb.servables import custom_ops


def _op_list(library: Path) -> op_def_pb2.OpList:
    """The ops the op library at ``library`` registers (``tf.load_op_library``'s way)."""
    from tensorflow.python.client import pywrap_tf_session

    handle = pywrap_tf_session.TF_LoadLibrary(str(library))
    try:
        ops = op_def_pb2.OpList.FromString(pywrap_tf_session.TF_GetOpList(handle))
    finally:
        pywrap_tf_session.TF_DeleteLibraryHandle(handle)
    return ops


def test_tf_text_ops_are_the_installed_packages() -> None:
    """:data:`custom_ops.TF_TEXT` knows every op the installed TF Text's libraries register:
    the listed ones, and the others in its ``TFText>`` namespace."""
    import tensorflow_text

    # the op libraries (python/ops/_*.so, python/metrics/_*.so), not the pybind modules in core/
    libraries = sorted((Path(tensorflow_text.__file__).parent / "python").glob("*/_*.so"))
    assert libraries
    ops = {op.name for library in libraries for op in _op_list(library).op}
    assert {op for op in ops if not op.startswith("TFText>")} == custom_ops.TF_TEXT.ops
    assert all(custom_ops.TF_TEXT.owns(op) for op in ops)
    assert not custom_ops.TF_TEXT.owns("MatMul")


def test_unregistered_ops_are_found_in_the_graph_and_its_functions() -> None:
    meta_graph = meta_graph_pb2.MetaGraphDef()
    meta_graph.graph_def.node.add(name="c", op="Const")
    meta_graph.graph_def.node.add(name="n", op="NoSuchOp")
    meta_graph.graph_def.node.add(name="call", op="f")  # a call of the library's function
    function = meta_graph.graph_def.library.function.add()
    function.signature.name = "f"
    function.node_def.add(name="m", op="NoSuchOpInF")
    function.node_def.add(name="a", op="AddV2")
    assert custom_ops.unregistered_ops(meta_graph) == {"NoSuchOp", "NoSuchOpInF"}


def test_an_op_of_no_known_package_gets_no_hint_when_all_are_installed() -> None:
    """(``tensorflow-text`` is a test dependency.)"""
    message = "Op type not registered 'NoSuchOp' in binary running on host. Make sure ..."
    with (
        pytest.raises(tf.errors.NotFoundError) as raised,
        custom_ops.ops_registered_for(meta_graph_pb2.MetaGraphDef()),
    ):
        raise tf.errors.NotFoundError(None, None, message)
    assert raised.value.message == message


def _tf_text_model(path: Path) -> Path:
    """``y = case_fold_utf8(x)``: one TF Text op (``CaseFoldUTF8``)."""
    import tensorflow_text

    class CaseFold(tf.Module):  # type: ignore[misc]
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, "x")])
        def __call__(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": tensorflow_text.case_fold_utf8(x)}

    module = CaseFold()
    tf.saved_model.save(module, str(path), module.__call__.get_concrete_function())
    return path


def test_a_graph_of_tf_text_ops_loads_once_tensorflow_text_is_there(tmp_path: Path) -> None:
    """In a fresh process (TF Text's ops not registered): with ``tensorflow_text`` not
    importable, the load fails with TensorFlow's NOT_FOUND text and the package to install;
    once it is, the same version loads (the package imported by the load) and answers."""
    model = _tf_text_model(tmp_path / "1")
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from tfserve_nb.core.status import ServingStatusError
        from tfserve_nb.servables.saved_model import SavedModelServable

        assert "tensorflow_text" not in sys.modules
        sys.modules["tensorflow_text"] = None  # as if tensorflow-text were not installed
        try:
            SavedModelServable({str(model)!r})
        except ServingStatusError as error:
            print(error.code.name)
            print(error.message)
        del sys.modules["tensorflow_text"]
        servable = SavedModelServable({str(model)!r})
        assert "tensorflow_text" in sys.modules
        signature = servable.signatures["serving_default"]
        print(servable.run(signature, {{"x": np.array([b"A String"])}}, ["y"])["y"].tolist())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    code, message, answer = done.stdout.strip().splitlines()[-3:]
    assert code == "NOT_FOUND"
    assert message.startswith("Op type not registered 'CaseFoldUTF8' in binary running on ")
    assert "Make sure the Op and Kernel are registered in the binary" in message
    assert message.endswith(
        "'CaseFoldUTF8' is an op of TF Text, whose package tensorflow-text is not installed: "
        f'pip install "tensorflow-text=={".".join(tf.__version__.split(".")[:2])}.*" in the '
        "model server's Python environment (tfserve-nb's [text] extra), then load the model "
        "again."
    )
    assert answer == "[b'a string']"
