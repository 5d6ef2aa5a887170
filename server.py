"""`python mnist_99_4.py serve`: a local page to draw a digit on and watch the model read it.

Two routes, nothing else (no file is ever served by its path):

    GET  /          the page, web/draw.html: HTML, CSS and JS in one file, offline
    POST /predict   image bytes (the canvas's PNG, or an uploaded PNG/JPEG) ->
                    {"digit": D, "probabilities": [p0, ..., p9], "seen": "data:image/png;base64,..."}
                    where "seen" is the 28x28 image the model read

Bad requests answer {"error": "..."}: 400 for what is not an image or holds
no ink, 413 for a body over MAX_BODY_BYTES, 404 for any other path. The
server goes on serving after each. The standard library's threaded server
is plenty for a demo on one's own machine.
"""
import base64
import io
import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import digit_image

PAGE = Path(__file__).resolve().parent / "web" / "draw.html"
MAX_BODY_BYTES = 8 * 1024 * 1024  # a phone photo is 2-6 MB


def read_image(body, classify):
    """The JSON answer for one image's bytes; `classify` maps a 28x28 uint8 digit to 10 probabilities."""
    digit = digit_image.load_digit(io.BytesIO(body))
    probabilities = [round(float(p), 6) for p in classify(digit)]
    seen = base64.b64encode(digit_image.png_bytes(digit)).decode("ascii")
    return {"digit": max(range(10), key=probabilities.__getitem__), "probabilities": probabilities,
            "seen": f"data:image/png;base64,{seen}"}


class DigitPageHandler(BaseHTTPRequestHandler):
    """Serves the page and reads posted images; `self.server.classify` does the reading."""

    server_version = "mnist_99_4"

    def do_GET(self):
        if self.path.split("?")[0] not in ("/", "/index.html"):
            return self.send_json({"error": f"no page at {self.path}; the page is at /"}, HTTPStatus.NOT_FOUND)
        self.send_body(self.server.page, "text/html; charset=utf-8")

    def do_POST(self):
        if self.path != "/predict":
            return self.send_json({"error": f"POST images to /predict, not {self.path}"}, HTTPStatus.NOT_FOUND)
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self.send_json({"error": "the request needs a Content-Length"}, HTTPStatus.BAD_REQUEST)
        if length > MAX_BODY_BYTES:
            self.discard_body(length)
            return self.send_json({"error": f"the image is {length / 2**20:.1f} MB; the limit is "
                                            f"{MAX_BODY_BYTES // 2**20} MB"}, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        body = self.rfile.read(length)
        try:
            answer = read_image(body, self.server.classify)
        except (OSError, ValueError) as error:  # not an image, truncated, blank canvas
            return self.send_json({"error": str(error)}, HTTPStatus.BAD_REQUEST)
        self.send_json(answer)

    def discard_body(self, length):
        """Read an oversized body away in chunks, so the client gets the answer and not a broken pipe."""
        if length > 8 * MAX_BODY_BYTES:  # not worth reading: the answer may not arrive, the connection ends
            self.close_connection = True
            return
        while length > 0:
            length -= len(self.rfile.read(min(length, 1 << 16)) or b"\0" * length)

    def send_json(self, answer, status=HTTPStatus.OK):
        self.send_body(json.dumps(answer).encode(), "application/json", status)

    def send_body(self, body, content_type, status=HTTPStatus.OK):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass  # one line per stroke would drown the address the user needs; errors reach the page


def make_server(classify, host="127.0.0.1", port=8000):
    """A threaded HTTP server for the page, bound and ready for serve_forever(); port 0 picks a free one."""
    server = ThreadingHTTPServer((host, port), DigitPageHandler)
    server.daemon_threads = True
    server.classify = classify
    server.page = PAGE.read_bytes()
    return server


def address(server):
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"
