"""Unit tests of the dashboard's pure parts: rendering, reading outputs, request targets, the
teaching commands and the hand-over of updates to the kernel's event loop. No server needed.
(The rollout rules and traffic statistics they show are tested in ``tests/test_rollout.py`` and
``tests/traffic/``.)"""

from __future__ import annotations

import asyncio
import io
import threading
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import traitlets
from PIL import Image

from tfserve_nb.errors import InvalidArgumentError
from tfserve_nb.widgets._kernel import UiDispatcher
from tfserve_nb.widgets._picker import RequestTarget, TargetKey
from tfserve_nb.widgets._render import (
    Chart,
    Marker,
    Series,
    image_shape_for,
    png_bytes,
    svg_chart,
    upscale,
)
from tfserve_nb.widgets.predictions import interpret
from tfserve_nb.widgets.teaching import curl_command

# ------------------------------------------------------------------ PNG


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_png_of_a_float_image_is_scaled_to_its_range() -> None:
    image = np.array([[0.0, 0.5], [1.0, 0.25]])
    assert decode(png_bytes(image)).tolist() == [[0, 128], [255, 64]]


def test_png_keeps_uint8_and_small_ints_and_colour_channels() -> None:
    grey = np.arange(12, dtype=np.int64).reshape(3, 4)
    assert decode(png_bytes(grey)).tolist() == grey.tolist()
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode(png_bytes(rgb)), rgb)
    rgba = np.dstack([rgb, np.full((5, 7), 200, np.uint8)])
    np.testing.assert_array_equal(decode(png_bytes(rgba)), rgba)
    np.testing.assert_array_equal(decode(png_bytes(rgb[:, :, :1])), rgb[:, :, 0])


def test_png_of_a_constant_image_is_black_and_bad_shapes_are_refused() -> None:
    assert decode(png_bytes(np.full((2, 2), 7.5))).tolist() == [[0, 0], [0, 0]]
    with pytest.raises(ValueError, match=r"shape \(2, 2, 2\)"):
        png_bytes(np.zeros((2, 2, 2)))


def test_upscale_by_whole_factors() -> None:
    assert upscale(np.zeros((8, 8)), 48).shape == (48, 48)
    assert upscale(np.zeros((28, 28)), 48).shape == (56, 56)
    assert upscale(np.zeros((64, 64, 3)), 48).shape == (64, 64, 3)


@pytest.mark.parametrize(
    ("shape", "image"),
    [
        ((64,), (8, 8)),
        ((784,), (28, 28)),
        ((3072,), (32, 32, 3)),
        ((28, 28), (28, 28)),
        ((28, 28, 1), (28, 28, 1)),
        ((32, 32, 3), (32, 32, 3)),
        ((4,), None),
        ((10,), None),
        ((3, 2), None),
        ((8, 8, 2), None),
    ],
)
def test_which_examples_are_images(shape: tuple[int, ...], image: tuple[int, ...] | None) -> None:
    assert image_shape_for(shape) == image


# ------------------------------------------------------------------ charts


def test_svg_chart_is_well_formed_with_gaps_stacked_bars_and_markers() -> None:
    chart = Chart(
        [0.0, 1.0, 2.0, 3.0],
        [
            Series("p50", "#00f", [1.0, None, 3.0, 4.0]),
            Series("", "#00f", [2.0, None, 3.5, 4.5], dashed=True),
            Series("ok", "#0f0", [0, 2, 1, 1], bars=True),
            Series("errors", "#f00", [0, 2, 0, None], bars=True),
        ],
        title="latency",
        unit=" ms",
        markers=[Marker(2.0, "v2", "#fa0")],
        span=60,
    )
    svg = svg_chart(chart)
    root = ET.fromstring(svg)
    tags = [element.tag.split("}")[1] for element in root.iter()]
    assert tags.count("polyline") == 2 and tags.count("circle") == 2  # 1.0 and 2.0 alone: dots
    assert tags.count("rect") == 3 + 4  # three legend boxes (not the unnamed series), four bars
    assert ">v2</text>" in svg and "-60 s" in svg and "5 ms" in svg  # y axis up to 5
    assert (
        chart.y_max() == 5 and Chart([0.0], [Series("", "#f00", [3], bars=True)], "").y_max() == 5
    )
    assert [bottoms for _, bottoms in chart.bar_layers()] == [[0, 0, 0, 0], [0, 2, 1, 1]]
    assert 'stroke-dasharray="4,3"' in svg and 'stroke="#fa0" stroke-dasharray="3,2"' in svg


# ------------------------------------------------------------------ reading outputs


def test_interpret_probabilities_logits_dicts_and_regression() -> None:
    probabilities = np.array([[0.1, 0.9], [0.7, 0.3]])
    answers = interpret(probabilities)
    assert answers.is_class and answers.values.tolist() == [1, 0]
    np.testing.assert_allclose(answers.confidence, [0.9, 0.7])

    logits = interpret({"output_0": np.array([[0.0, 0.0]]), "aux": np.zeros((1, 3))})
    np.testing.assert_allclose(logits.confidence, [0.5])

    regression = interpret({"y": np.array([[2.5], [3.0]])})
    assert not regression.is_class and regression.confidence is None
    assert regression.values.tolist() == [2.5, 3.0]
    with pytest.raises(InvalidArgumentError, match="'z' not in the model's outputs"):
        interpret({"y": np.zeros((1, 1))}, output="z")


# ------------------------------------------------------------------ targets and texts


def test_request_targets_round_trip() -> None:
    for spec, key, words in [
        (None, "latest", "the latest version"),
        (2, "version:2", "version 2"),
        ("canary", "label:canary", "label canary"),
    ]:
        target = RequestTarget.of(spec)
        assert target.key == key and target.describe() == words
        assert RequestTarget.parse(key) == target
    with pytest.raises(ValueError, match="use 'latest', 'version:N' or 'label:L'"):
        RequestTarget.parse("newest")


def test_target_key_trait_refuses_malformed_keys() -> None:
    class Owner(traitlets.HasTraits):
        target = TargetKey("latest")

    owner = Owner()
    owner.target = "label:stable"
    with pytest.raises(traitlets.TraitError, match="unknown request target 'v2'"):
        owner.target = "v2"


def test_curl_command_paths_and_body() -> None:
    example = np.array([0.5, 1.0], np.float32)
    assert curl_command("http://h:1/", "m", RequestTarget(), example) == (
        "curl -s -X POST http://h:1/v1/models/m:predict \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        "  -d '{\"instances\": [[0.5, 1.0]]}'"
    )
    assert "/v1/models/m/versions/3:predict" in curl_command(
        "http://h:1", "m", RequestTarget(version=3), example
    )
    assert '"signature_name": "other"' in curl_command(
        "http://h:1", "m", RequestTarget(label="x"), example, "other"
    )
    assert "http://h:1/v1/models/my%20model/labels/a%2Fb:predict" in curl_command(
        "http://h:1", "my model", RequestTarget(label="a/b"), example
    )  # names URL-quoted, as the client sends them


# ------------------------------------------------------------------ kernel hand-over


def test_updates_from_threads_run_on_the_event_loop_thread() -> None:
    ran_on: list[int] = []

    async def main() -> None:
        dispatcher = UiDispatcher()
        assert dispatcher.has_loop
        done = asyncio.Event()

        def update() -> None:
            ran_on.append(threading.get_ident())
            done.set()

        worker = threading.Thread(target=lambda: dispatcher.run(update))
        worker.start()
        await asyncio.wait_for(done.wait(), 10)
        worker.join()
        dispatcher.run(ran_on.append, -1)  # from the loop's own thread: at once
        assert ran_on[-1] == -1

    asyncio.run(main())
    assert ran_on[0] == threading.get_ident()


def test_without_a_loop_updates_run_in_place_and_a_closed_loop_says_stop() -> None:
    calls: list[int] = []
    assert UiDispatcher().run(calls.append, 1) and calls == [1]
    loop = asyncio.new_event_loop()
    dispatcher = UiDispatcher(loop)
    loop.close()
    outcome: list[bool] = []
    worker = threading.Thread(target=lambda: outcome.append(dispatcher.run(calls.append, 2)))
    worker.start()
    worker.join()
    assert outcome == [False] and calls == [1]
