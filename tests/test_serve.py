"""`mmtask serve`: TF Serving's REST predict API over real HTTP, per-example image statuses."""

import base64
import io
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tiny_models import TASKS, make_model

from mmtask.data import decode_image
from mmtask.data.image_header_ops import BMP, GIF, JPEG, PNG, UNKNOWN, WEBP, image_header
from mmtask.data.images import missing_image
from mmtask.errors import MmtaskError
from mmtask.export import export_saved_model
from mmtask.serving import ModelServer, open_model

IMAGE_SIZE = 16
MAX_REQUEST_BYTES = 200_000
MAX_BATCH_SIZE = 16
MAX_PIXELS = 1_000_000
TEXTS = ["good sun", "bad rain cat", "", "caf\u00e9 tea"]


def pixels(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def encoded(array, fmt, **options):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **options)
    return buffer.getvalue()


def png_bomb(height, width):
    """A valid PNG header declaring height x width pixels, with a tiny (truncated) body."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * (3 * width + 1) * 4)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def corrupt_middle(data):
    """The file with its middle overwritten: start and end markers intact."""
    middle = len(data) // 2
    return data[: middle - 40] + bytes(range(80)) + data[middle + 40 :]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    model = make_model(image_size=IMAGE_SIZE)
    root = tmp_path_factory.mktemp("serve")
    export_saved_model(model, root / "tiny", version=1, max_image_pixels=MAX_PIXELS)
    server = ModelServer(
        open_model(root / "tiny"),
        ("127.0.0.1", 0),
        max_request_bytes=MAX_REQUEST_BYTES,
        max_batch_size=MAX_BATCH_SIZE,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield model, server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def request(server, method, path, body=None):
    """(status, JSON body) of one request to `server`, over a real socket."""
    connection = HTTPConnection(*server.server_address[:2], timeout=60)
    try:
        data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def instances(texts, images):
    return {
        "instances": [
            {"text": t, "image_bytes": {"b64": base64.b64encode(b).decode()}}
            for t, b in zip(texts, images, strict=True)
        ]
    }


def expected_probabilities(model, texts, images):
    """The Keras model's own answer; None in `images` is a missing image."""
    decoded = [
        missing_image(IMAGE_SIZE) if b is None else decode_image(tf.constant(b), IMAGE_SIZE)
        for b in images
    ]
    inputs = {"text": np.array(texts, object), "image": np.stack([d.numpy() for d in decoded])}
    return model.predict(inputs, verbose=0)


def test_header_gives_format_and_size_of_every_format():
    image = pixels(20, 30)
    files = {
        "jpeg": (
            encoded(image, "JPEG", progressive=True, exif=b"Exif\x00\x00" + bytes(3000)),
            JPEG,
        ),
        "png": (encoded(image, "PNG"), PNG),
        "gif": (encoded(image, "GIF"), GIF),
        "bmp": (encoded(image, "BMP"), BMP),
        "webp_lossy": (encoded(image, "WEBP"), WEBP),
        "webp_lossless": (encoded(image, "WEBP", lossless=True), WEBP),
    }
    header = tf.function(image_header)
    for name, (data, fmt) in files.items():
        assert [int(v) for v in header(tf.constant(data))] == [fmt, 20, 30], name
    assert [int(v) for v in header(tf.constant(png_bomb(20000, 30000)))] == [PNG, 20000, 30000]
    for data in (b"", b"just some text\n", b"\xff\xd8\xff", b"RIFF\x00\x00\x00\x00WEBP"):
        fmt, height, width = header(tf.constant(data))
        assert int(height) * int(width) == 0
        assert int(fmt) in (UNKNOWN, JPEG, WEBP)


def test_a_batch_is_answered_as_the_model_predicts(served):
    model, server = served
    images = [encoded(pixels(20 + 5 * i, 30, seed=i), "PNG" if i % 2 else "JPEG") for i in range(4)]
    status, body = request(server, "POST", "/v1/models/tiny:predict", instances(TEXTS, images))
    assert status == 200, body
    expected = expected_probabilities(model, TEXTS, images)
    predictions = body["predictions"]
    assert len(predictions) == len(TEXTS)
    assert [p["image_status"] for p in predictions] == ["ok"] * 4
    for task in TASKS:
        got = np.array([p[f"{task}_probabilities"] for p in predictions])
        np.testing.assert_allclose(got, expected[task], atol=1e-4)
        names = [model.label_names[task][i] for i in expected[task].argmax(-1)]
        assert [p[f"{task}_label"] for p in predictions] == names
    # The columnar form gives the same numbers, by column.
    columns = {
        "inputs": {
            "text": TEXTS,
            "image_bytes": [{"b64": base64.b64encode(b).decode()} for b in images],
        }
    }
    status, body = request(server, "POST", "/v1/models/tiny/versions/1:predict", columns)
    assert status == 200, body
    np.testing.assert_allclose(
        body["outputs"]["post_task_probabilities"], expected["post_task"], atol=1e-4
    )


def test_a_bad_image_spoils_only_its_post(served):
    model, server = served
    good = encoded(pixels(20, 30), "PNG")
    webp = encoded(pixels(24, 18, seed=1), "WEBP")
    batch = [
        (good, "ok"),
        (corrupt_middle(encoded(pixels(40, 40, seed=2), "PNG")), "undecodable"),
        (corrupt_middle(encoded(pixels(64, 64, seed=3), "JPEG")), None),
        (b"this is a text file renamed .jpg\n", "undecodable"),
        (png_bomb(20000, 20000), "too_large"),
        (webp, "ok"),
        (b"", "missing"),
    ]
    texts = ["good sun"] * len(batch)
    status, body = request(
        server, "POST", "/v1/models/tiny:predict", instances(texts, [b for b, _ in batch])
    )
    assert status == 200, body
    statuses = [p["image_status"] for p in body["predictions"]]
    for got, (_, wanted) in zip(statuses, batch, strict=True):
        # libjpeg recovers some corrupt scans with grey blocks; either answer is a fair one.
        assert got == wanted or (wanted is None and got in ("ok", "undecodable"))
    used = [b if s == "ok" else None for (b, _), s in zip(batch, statuses, strict=True)]
    expected = expected_probabilities(model, texts, used)
    got = np.array([p["post_task_probabilities"] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected["post_task"], atol=1e-4)


def test_mismatched_batch_sizes_are_a_clear_error(served):
    _, server = served
    with pytest.raises(MmtaskError, match="^`text` and `image_bytes` must hold one entry per post"):
        server.model.predict({"text": [b"a", b"b"], "image_bytes": [b""]})
    columns = {"inputs": {"text": ["a", "b"], "image_bytes": [{"b64": ""}]}}
    status, body = request(server, "POST", "/v1/models/tiny:predict", columns)
    assert status == 400 and "one entry per example" in body["error"]


@pytest.mark.parametrize(
    "body, says",
    [
        (b"{not json", "not valid JSON"),
        ([1, 2], "JSON object"),
        ({"instances": [{"text": "a"}]}, "exactly the keys"),
        ({"instances": [{"text": "a", "image_bytes": {"b64": "%%%"}}]}, "base64"),
        ({"instances": [{"text": 3, "image_bytes": {"b64": ""}}]}, "must be a string"),
        ({"instances": []}, "no examples"),
        ({"rows": []}, '"instances"'),
        ({"instances": [], "signature_name": "other"}, "signature_name"),
    ],
)
def test_a_malformed_request_gets_400_and_a_json_error(served, body, says):
    _, server = served
    status, answer = request(server, "POST", "/v1/models/tiny:predict", body)
    assert status == 400
    assert says in answer["error"]


def test_an_oversized_request_gets_413(served):
    _, server = served
    big = {"instances": [{"text": "x" * MAX_REQUEST_BYTES, "image_bytes": {"b64": ""}}]}
    status, answer = request(server, "POST", "/v1/models/tiny:predict", big)
    assert status == 413 and str(MAX_REQUEST_BYTES) in answer["error"]
    many = instances(["a"] * (MAX_BATCH_SIZE + 1), [b""] * (MAX_BATCH_SIZE + 1))
    status, answer = request(server, "POST", "/v1/models/tiny:predict", many)
    assert status == 413 and str(MAX_BATCH_SIZE) in answer["error"]
    # The server still answers afterwards.
    status, _ = request(server, "POST", "/v1/models/tiny:predict", instances(["a"], [b""]))
    assert status == 200


def test_status_endpoint_and_unknown_paths(served):
    _, server = served
    status, body = request(server, "GET", "/v1/models/tiny")
    assert status == 200
    assert body["model_version_status"][0]["state"] == "AVAILABLE"
    assert body["model_version_status"][0]["version"] == "1"
    assert request(server, "GET", "/v1/models/other")[0] == 404
    assert request(server, "GET", "/v1/models/tiny/versions/7")[0] == 404
    assert request(server, "GET", "/")[0] == 404
    assert request(server, "POST", "/v1/models/tiny", b"{}")[0] == 405
    assert request(server, "POST", "/v1/models/tiny:classify", b"{}")[0] == 404
    assert request(server, "DELETE", "/v1/models/tiny")[0] == 405


def test_concurrent_requests_each_get_their_own_answer(served):
    model, server = served
    batches = [
        ([f"{w} sun" for w in ("good", "bad", "tea")[: 1 + i % 3]], [i] * (1 + i % 3))
        for i in range(8)
    ]
    files = {i: encoded(pixels(20, 20 + i, seed=i), "PNG") for i in range(8)}

    def ask(batch):
        texts, seeds = batch
        body = instances(texts, [files[s] for s in seeds])
        return request(server, "POST", "/v1/models/tiny:predict", body)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, batches))
    for (texts, seeds), (status, body) in zip(batches, answers, strict=True):
        assert status == 200, body
        expected = expected_probabilities(model, texts, [files[s] for s in seeds])
        got = [p["text_task_probabilities"] for p in body["predictions"]]
        np.testing.assert_allclose(got, expected["text_task"], atol=1e-4)


def test_a_keras_file_is_exported_then_served(served, tmp_path):
    model, _ = served
    model.save(tmp_path / "tiny.keras")
    opened = open_model(tmp_path / "tiny.keras", max_image_pixels=MAX_PIXELS)
    try:
        assert (opened.name, opened.version, opened.max_image_pixels) == ("tiny", 1, MAX_PIXELS)
        images = [encoded(pixels(20, 30), "PNG"), png_bomb(2000, 2000)]
        outputs = opened.predict({"text": [b"good sun", b"bad"], "image_bytes": images})
        assert [s.decode() for s in outputs["image_status"]] == ["ok", "too_large"]
        expected = expected_probabilities(model, ["good sun", "bad"], [images[0], None])
        np.testing.assert_allclose(
            outputs["image_task_probabilities"], expected["image_task"], atol=1e-4
        )
    finally:
        opened.close()
    assert not opened.export_dir.exists()


def test_the_serve_command_serves_until_interrupted(served):
    model, server = served
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    export = server.model.export_dir.parent  # the TF Serving layout, tiny/1/
    process = subprocess.Popen(
        [sys.executable, "-m", "mmtask.cli", "serve", str(export), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("serving tiny version 1 at http://127.0.0.1:"), (
            line + process.stderr.read()
        )
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        connection = HTTPConnection("127.0.0.1", port, timeout=60)
        image = encoded(pixels(20, 30), "PNG")
        connection.request(
            "POST", "/v1/models/tiny:predict", body=json.dumps(instances(["good sun"], [image]))
        )
        answer = json.loads(connection.getresponse().read())
        connection.close()
        expected = expected_probabilities(model, ["good sun"], [image])
        np.testing.assert_allclose(
            answer["predictions"][0]["post_task_probabilities"], expected["post_task"][0], atol=1e-4
        )
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    assert process.returncode == 0, process.stderr.read()[-2000:]


def test_serve_refuses_what_it_cannot_serve_in_one_line(served, tmp_path, capsys):
    from mmtask.cli import main

    _, server = served
    fake = tmp_path / "model.keras"
    fake.write_text("not a zip archive")
    cases = [
        ([str(fake)], "Could not load a model"),
        ([str(tmp_path / "absent")], "No model at"),
        ([str(server.model.export_dir), "--max-image-pixels", "5"], "re-export it"),
    ]
    for args, says in cases:
        assert main(["serve", *args, "--port", "0"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("mmtask serve: error: ") and says in err[0]
