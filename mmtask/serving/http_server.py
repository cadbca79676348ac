"""An HTTP server answering TensorFlow Serving's REST API for one mmtask model.

Routes, as TF Serving has them:

- `POST /v1/models/NAME[/versions/N]:predict`: one model call per request,
  whatever its batch size (see `mmtask.serving.rest` for the bodies);
- `GET /v1/models/NAME[/versions/N]`: the model's status, `AVAILABLE` once
  loaded (a health check).

Errors are `{"error": "..."}` with 400 (malformed request), 404 (unknown
model or path), 405, 408 (body too slow), 411 (no Content-Length), 413 (body
or batch over the limits) or 500. The standard library's threading server is enough: one
thread per connection, and the model call, where the time goes, is thread-safe
TensorFlow that releases the GIL.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from mmtask.errors import MmtaskError
from mmtask.serving.rest import RequestError, parse_predict_request, predict_response
from mmtask.serving.served_model import ServedModel

DEFAULT_MAX_REQUEST_BYTES = 32 << 20
"""Largest request body read: 32 MiB, a few dozen photos in base64."""
DEFAULT_MAX_BATCH_SIZE = 256
"""Most examples one request may hold."""
DEFAULT_MAX_CONCURRENT_CALLS = 4
"""Model calls run at once; requests beyond wait. Bounds the memory that decoding takes."""
REQUEST_TIMEOUT_S = 60
"""A connection that sends nothing for this long is closed."""

_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?::(?P<verb>\w+))?$"
)


class ModelServer(ThreadingHTTPServer):
    """Serves `model` on (host, port); port 0 takes a free one (see `server_address`).

    Args:
        model: ServedModel.
        address: (str, int). Host and port to listen on.
        max_request_bytes: int. Larger bodies get a 413 without being read.
        max_batch_size: int. Requests with more examples get a 413.
        max_concurrent_calls: int. Model calls running at once; other
            requests wait their turn (each call decodes its images in
            parallel, up to `max_image_pixels` each).
        log_requests: bool. Log every request on stderr, not only failed ones.
    """

    daemon_threads = True

    def __init__(
        self,
        model: ServedModel,
        address: tuple[str, int],
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_concurrent_calls: int = DEFAULT_MAX_CONCURRENT_CALLS,
        log_requests: bool = False,
    ):
        self.model = model
        self.max_request_bytes = max_request_bytes
        self.max_batch_size = max_batch_size
        self.calls = threading.BoundedSemaphore(max_concurrent_calls)
        self.log_requests = log_requests
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1/models/{self.model.name}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse their connection
    # Headers and body go out in two writes; with Nagle's algorithm the body
    # would wait for the client's delayed ACK of the headers (some 40 ms).
    disable_nagle_algorithm = True
    timeout = REQUEST_TIMEOUT_S
    server: ModelServer

    def do_GET(self) -> None:
        self._answer(self._status)

    def do_POST(self) -> None:
        self._answer(self._predict)

    def _not_allowed(self) -> None:
        def refuse():
            self.close_connection = True  # a body, if any, is not read
            raise RequestError(
                HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not served: use GET or POST"
            )

        self._answer(refuse)

    do_PUT = do_DELETE = do_PATCH = _not_allowed

    def _answer(self, handler) -> None:
        try:
            status, body = handler()
        except RequestError as error:
            status, body = error.status, {"error": str(error)}
        except Exception as error:  # a bug or a failure inside the model: say so, keep serving
            traceback.print_exc(file=sys.stderr)
            status, body = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": _first_line(error)}
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _route(self, verb: str | None) -> None:
        match = _PATH.match(self.path.split("?", 1)[0])
        model = self.server.model
        if match is None:
            raise RequestError(
                HTTPStatus.NOT_FOUND,
                f"Unknown path {self.path}: try POST /v1/models/{model.name}:predict "
                f"or GET /v1/models/{model.name}",
            )
        if match["name"] != model.name:
            raise RequestError(
                HTTPStatus.NOT_FOUND, f"No model {match['name']!r}; this server has {model.name!r}"
            )
        if match["version"] is not None and int(match["version"]) != model.version:
            raise RequestError(
                HTTPStatus.NOT_FOUND,
                f"No version {match['version']} of {model.name!r}; it has version {model.version}",
            )
        if match["verb"] != verb:
            wanted = f"POST /v1/models/{model.name}:predict" if verb is None else "GET"
            raise RequestError(
                HTTPStatus.METHOD_NOT_ALLOWED
                if match["verb"] in (None, "predict")
                else HTTPStatus.NOT_FOUND,
                f"{self.command} {self.path} is not served: use {wanted} "
                "(this server answers :predict only, not :classify or :regress)",
            )

    def _status(self) -> tuple[HTTPStatus, dict]:
        self._route(verb=None)
        version = {
            "version": str(self.server.model.version),
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""},
        }
        return HTTPStatus.OK, {"model_version_status": [version]}

    def _predict(self) -> tuple[HTTPStatus, dict]:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length is None or not length.isdigit():
            self.close_connection = True
            raise RequestError(
                HTTPStatus.LENGTH_REQUIRED, "Send the body with a Content-Length header."
            )
        if int(length) > self.server.max_request_bytes:
            self.close_connection = True  # the unread body must not be taken for a request
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"The body has {int(length)} bytes; this server takes at most "
                f"{self.server.max_request_bytes} per request.",
            )
        try:
            body = self.rfile.read(int(length))
        except TimeoutError:
            self.close_connection = True
            raise RequestError(
                HTTPStatus.REQUEST_TIMEOUT,
                f"The body did not arrive within {REQUEST_TIMEOUT_S} s.",
            ) from None
        self._route(verb="predict")
        model = self.server.model
        columns, columnar = parse_predict_request(body, model.inputs, self.server.max_batch_size)
        try:
            with self.server.calls:
                outputs = model.predict(columns)
        except MmtaskError as error:
            raise RequestError(HTTPStatus.BAD_REQUEST, str(error)) from None
        return HTTPStatus.OK, predict_response(outputs, columnar)

    def log_request(self, code="-", size="-") -> None:
        if self.server.log_requests or (isinstance(code, int) and code >= 400):
            super().log_request(code, size)


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
