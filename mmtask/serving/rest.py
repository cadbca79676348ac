"""TensorFlow Serving's REST predict protocol: JSON requests in, named input columns out, and back.

Pure Python, no TensorFlow: the HTTP server hands the columns to the model.
Both request forms of TF Serving are read: the row form
`{"instances": [{"text": "...", "image_bytes": {"b64": "..."}}, ...]}`,
answered as `{"predictions": [{output: value, ...}, ...]}`, and the columnar
form `{"inputs": {"text": [...], "image_bytes": [...]}}`, answered as
`{"outputs": {output: [...], ...}}`. As in TF Serving, binary values come as
`{"b64": "..."}` and string outputs whose name ends in `_bytes` go back so.
"""

from __future__ import annotations

import base64
import binascii
import json
from http import HTTPStatus

SIGNATURE_NAMES = ("serving_default", "serve")


class RequestError(Exception):
    """A request the server refuses, with the HTTP status to answer it with.

    Args:
        status: HTTPStatus. 400 for a malformed request, 413 for one too large.
        message: str. What is wrong, for the `{"error": ...}` body.
    """

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


def parse_predict_request(
    body: bytes, inputs: list[str], max_batch_size: int
) -> tuple[dict[str, list[bytes]], bool]:
    """The input columns a predict request holds, and whether it used the columnar form.

    Args:
        body: bytes. The request body.
        inputs: list[str]. The model's input names (`text`, `image_bytes`).
        max_batch_size: int. Most examples one request may hold (more is a 413).

    Returns:
        `{input: [bytes per example]}` (texts UTF-8 encoded) and True for the
        columnar (`inputs`) form.
    """
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"The body is not valid JSON: {error}") from None
    if not isinstance(request, dict):
        raise RequestError(HTTPStatus.BAD_REQUEST, "The body must be a JSON object.")
    signature = request.get("signature_name", SIGNATURE_NAMES[0])
    if signature not in SIGNATURE_NAMES:
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            f"Unknown signature_name {signature!r}: this model has {', '.join(SIGNATURE_NAMES)}.",
        )
    unknown = set(request) - {"signature_name", "instances", "inputs"}
    if unknown or ("instances" in request) == ("inputs" in request):
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            'The body must hold either "instances" (a list of examples) or "inputs" '
            f'(a column per input), and besides only "signature_name". Received keys: '
            f"{sorted(request)}",
        )
    if "instances" in request:
        columns = _rows_to_columns(request["instances"], inputs)
    else:
        columns = _columns(request["inputs"], inputs)
    size = len(next(iter(columns.values())))
    if size == 0:
        raise RequestError(HTTPStatus.BAD_REQUEST, "The request holds no examples.")
    if size > max_batch_size:
        raise RequestError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"The request holds {size} examples; this server takes at most {max_batch_size} "
            "per request.",
        )
    return columns, "inputs" in request


def _rows_to_columns(instances, inputs: list[str]) -> dict[str, list[bytes]]:
    if not isinstance(instances, list):
        raise RequestError(HTTPStatus.BAD_REQUEST, '"instances" must be a list of examples.')
    columns = {name: [] for name in inputs}
    for index, instance in enumerate(instances):
        if len(inputs) == 1 and not isinstance(instance, dict):
            instance = {inputs[0]: instance}
        if not isinstance(instance, dict) or set(instance) != set(inputs):
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                f"Instance {index} must be an object with exactly the keys {inputs} "
                '(send "" for a missing text, {"b64": ""} for a missing image). '
                f"Received: {_shown(instance)}",
            )
        for name in inputs:
            columns[name].append(_value(instance[name], f"instances[{index}].{name}"))
    return columns


def _columns(given, inputs: list[str]) -> dict[str, list[bytes]]:
    if len(inputs) == 1 and isinstance(given, list):
        given = {inputs[0]: given}
    if not isinstance(given, dict) or set(given) != set(inputs):
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            f'"inputs" must be an object with exactly the keys {inputs}, each a list. '
            f"Received: {_shown(given)}",
        )
    columns = {}
    for name in inputs:
        if not isinstance(given[name], list):
            raise RequestError(HTTPStatus.BAD_REQUEST, f'"inputs.{name}" must be a list.')
        columns[name] = [_value(v, f"inputs.{name}[{i}]") for i, v in enumerate(given[name])]
    sizes = {name: len(values) for name, values in columns.items()}
    if len(set(sizes.values())) > 1:
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            f"The input columns must hold one entry per example, as many of each: {sizes}",
        )
    return columns


def _value(value, where: str) -> bytes:
    """A string value as bytes: text UTF-8 encoded, `{"b64": ...}` decoded."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except binascii.Error as error:
            raise RequestError(
                HTTPStatus.BAD_REQUEST, f"{where} is not valid base64: {error}"
            ) from None
    raise RequestError(
        HTTPStatus.BAD_REQUEST,
        f'{where} must be a string or {{"b64": "..."}}. Received: {_shown(value)}',
    )


def _shown(value, limit: int = 80) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "..."


def predict_response(outputs: dict, columnar: bool) -> dict:
    """The JSON answer to a predict request, from the model's output arrays (batch first)."""
    lists = {name: _jsonable(name, values.tolist()) for name, values in outputs.items()}
    if columnar:
        return {"outputs": lists}
    size = len(next(iter(lists.values())))
    return {"predictions": [{name: lists[name][i] for name in lists} for i in range(size)]}


def _jsonable(name: str, values):
    if isinstance(values, list):
        return [_jsonable(name, v) for v in values]
    if isinstance(values, bytes):
        if name.endswith("_bytes"):
            return {"b64": base64.b64encode(values).decode("ascii")}
        return values.decode("utf-8", errors="replace")
    return values
