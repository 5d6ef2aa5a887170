"""`python mnist_99_4.py serve`: a local page to draw a digit on and watch the model read it.

Two routes, nothing else (no file is ever served by its path):

    GET  /          the page, web/draw.html: HTML, CSS and JS in one file, offline
    POST /predict   an image: its bytes as the body (the page's canvas, `curl --data-binary @digit.png`),
                    or a multipart form upload in the field "file" (`curl -F file=@digit.png`) ->
                    {"digit": D, "probabilities": [p0, ..., p9], "unsure": false, "doubt": null,
                     "seen": "data:image/png;base64,..."}
                    where "seen" is the 28x28 image the model read, and "unsure" is true (with
                    "doubt" saying why) when the image is unlikely to be one digit.
                    `?ink=dark` (or light) says which the ink is, as the page does for its canvas;
                    without it, it is read off the image as `predict` does. `?number=1` reads every
                    digit of a written number, left to right (`predict --number`) ->
                    {"number": "2026", "digits": [{"digit": 2, "probability": p, "box": [x, y, w, h],
                     "seen": "data:...", "unsure": false, "doubt": null}, ...]}
                    ("12.5" where a decimal point or comma is written between two digits).

Every other request gets a JSON answer too, {"error": "..."}, with its status: 400 for what is
not an image, holds no ink or would decode to over MAX_REQUEST_PIXELS, 411 and 400 for a missing or
bad Content-Length, 408 for a body that stops arriving or a request that takes over
REQUEST_DEADLINE_S, 413 for one over MAX_BODY_BYTES, 404 for any other path, 405 for another
method, and 503 when all READERS are busy for BUSY_WAIT_S. The server answers before it closes a
connection, and goes on serving after each. The standard library's threaded server (a thread a
connection, the reading itself bounded by READERS) is plenty for a demo on one's own machine.
"""
import base64
import email.parser
import email.policy
import io
import json
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import digit_image
import number_image

PAGE = Path(__file__).resolve().parent / "web" / "draw.html"
MAX_BODY_BYTES = 8 * 1024 * 1024  # a phone photo is 2-6 MB
BODY_TIMEOUT_S = 10               # a body that stops arriving for this long is answered 408
DRAIN_BYTES = 64 * 1024 * 1024    # read away at most this much of a refused body, so the answer arrives
UPLOAD_FIELD = "file"             # the multipart field the page's help and the README name
MAX_FORM_PARTS = 16               # a form upload needs one part; a few more (other fields) are read past
REQUEST_DEADLINE_S = 30           # a whole request, however steadily its bytes trickle in, is cut off after this
READERS = 4                       # images read at once: more only share the same cores, and each holds its pixels
BUSY_WAIT_S = 5                   # a request waits this long for a reader before it is answered 503
# Decoded pixels a request may cost: Pillow holds up to 4 bytes each, and shrinking a transparent image
# copies it once, so 80 MB at most (benchmarks/faults.py measures it). A phone's JPEG is decoded at a
# fraction of its size and passes.
MAX_REQUEST_PIXELS = 10_000_000
CONNECTION_ERRORS = (ConnectionError, socket.timeout, TimeoutError)


class BadRequest(Exception):
    """A request refused with a JSON error and this status."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def late():
    """What a request cut off at its deadline is told (408)."""
    return f"the request took longer than {REQUEST_DEADLINE_S} s"


def read_image(body, read, ink=None):
    """The JSON answer for one image's bytes; `read(file, ink, max_pixels)` is use.read_digit for the
    served model."""
    reading = read(io.BytesIO(body), ink, MAX_REQUEST_PIXELS)
    probabilities = [round(float(p), 6) for p in reading.probabilities]
    return {"digit": max(range(10), key=probabilities.__getitem__), "probabilities": probabilities,
            "unsure": reading.unsure, "doubt": reading.doubt or None, "seen": seen_url(reading.digit)}


def seen_url(digit):
    """A 28x28 image the model read, as a data: URL the page can show."""
    return "data:image/png;base64," + base64.b64encode(digit_image.png_bytes(digit)).decode("ascii")


def read_number_image(body, read_number, ink=None):
    """The JSON answer for a written number's bytes; `read_number(file, ink, max_pixels)` is use.read_number
    for the served model: each digit left to right, with its box in the image's pixels."""
    parts = read_number(io.BytesIO(body), ink, MAX_REQUEST_PIXELS)
    digits = [{"digit": int(part.reading.probabilities.argmax()),
               "probability": round(float(part.reading.probabilities.max()), 6),
               "unsure": part.reading.unsure, "doubt": part.reading.doubt or None, "box": list(part.box),
               "seen": seen_url(part.reading.digit)} for part in parts]
    return {"number": number_image.written((d["digit"], part.after_point) for d, part in zip(digits, parts)),
            "digits": digits}


def uploaded_file(body, content_type):
    """The bytes of the file in a multipart/form-data body: the field UPLOAD_FIELD, else its one file.

    A form of many parts or forms within forms costs the parser far more than its size (40,000 parts:
    seconds; 1,000 levels: Python's recursion limit), so both are refused before it runs."""
    if body.count(b"\n--") > 2 * MAX_FORM_PARTS:  # each part opens and may close with a boundary line
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"a form of more than {MAX_FORM_PARTS} parts: send the image alone")
    if b"content-type: multipart/" in body.lower():
        raise BadRequest(HTTPStatus.BAD_REQUEST, "a form within a form: send the image in a plain form upload")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body)
    parts = [part for part in message.iter_parts() if part.get_content_disposition() == "form-data"]
    named = [part for part in parts if part.get_param("name", header="content-disposition") == UPLOAD_FIELD]
    files = named or [part for part in parts if part.get_filename()]
    if not files:
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"a form upload needs the image in a field named '{UPLOAD_FIELD}'")
    return files[0].get_payload(decode=True) or b""


class DigitPageHandler(BaseHTTPRequestHandler):
    """Serves the page and reads posted images; `self.server.read` does the reading."""

    server_version = "mnist_99_4"
    timeout = BODY_TIMEOUT_S  # on the socket: a request that stops arriving does not hold a thread forever

    def handle_one_request(self):
        """One request, cut off at REQUEST_DEADLINE_S: the socket's timeout bounds each pause, not a client
        that sends a byte every few seconds and would hold its thread forever."""
        self.cut_off = False
        deadline = threading.Timer(REQUEST_DEADLINE_S, self.end_request)
        deadline.daemon = True
        deadline.start()
        try:
            super().handle_one_request()
        finally:
            deadline.cancel()

    def parse_request(self):
        """http.server's parsing, but headers cut off at the deadline are not a request to act on."""
        parsed = super().parse_request()
        if parsed and self.cut_off:
            self.send_error(HTTPStatus.REQUEST_TIMEOUT)
            return False
        return parsed

    def end_request(self):
        """Stop reading the request: the read waiting on it ends, and the answer says why."""
        self.cut_off = self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RD)
        except OSError:
            pass  # already closed

    def do_GET(self, head=False):
        path = urlsplit(self.path).path
        if path == "/predict":
            return self.send_json({"error": "POST an image to /predict (its bytes, or a form upload in the field "
                                            f"'{UPLOAD_FIELD}'); the page is at /"},
                                  HTTPStatus.METHOD_NOT_ALLOWED, head=head, extra_headers={"Allow": "POST"})
        if path not in ("/", "/index.html"):
            return self.send_json({"error": f"no page at {self.path}; the page is at /"}, HTTPStatus.NOT_FOUND,
                                  head=head)
        self.send_body(self.server.page, "text/html; charset=utf-8", head=head)

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_POST(self):
        url = urlsplit(self.path)
        if url.path != "/predict":
            self.refuse_body()
            return self.send_json({"error": f"POST images to /predict, not {url.path}"}, HTTPStatus.NOT_FOUND)
        query = parse_qs(url.query)
        ink, number = query.get("ink", [None])[0], query.get("number", ["0"])[0]
        try:
            if ink not in (None, "dark", "light"):
                raise BadRequest(HTTPStatus.BAD_REQUEST, f"ink={ink}: dark or light")
            if number not in ("0", "1"):
                raise BadRequest(HTTPStatus.BAD_REQUEST, f"number={number}: 1 (read every digit) or 0")
            body = self.read_body()
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("multipart/form-data"):
                body = uploaded_file(body, content_type)
            answer = self.read_when_free(body, ink, number == "1")
        except BadRequest as error:
            return self.send_json({"error": str(error)}, error.status)
        except (OSError, ValueError) as error:  # not an image, truncated, blank canvas, too many pixels
            return self.send_json({"error": str(error)}, HTTPStatus.BAD_REQUEST)
        self.send_json(answer)

    def read_when_free(self, body, ink, number=False):
        """read_image (read_number_image) once one of the server's READERS is free; BadRequest 503 after
        BUSY_WAIT_S."""
        if not self.server.readers.acquire(timeout=BUSY_WAIT_S):
            raise BadRequest(HTTPStatus.SERVICE_UNAVAILABLE,
                             f"busy: {READERS} images are being read and more are waiting; try again in a moment")
        try:
            if number:
                return read_number_image(body, self.server.read_number, ink)
            return read_image(body, self.server.read, ink)
        finally:
            self.server.readers.release()

    def refuse_method(self):
        self.refuse_body()
        self.send_json({"error": f"{self.command} is not served: GET / for the page, POST /predict for an image"},
                       HTTPStatus.METHOD_NOT_ALLOWED, extra_headers={"Allow": "GET, HEAD, POST"})

    do_PUT = do_DELETE = do_OPTIONS = do_PATCH = refuse_method

    def read_body(self):
        """The request's body, at most MAX_BODY_BYTES of it as received; BadRequest for any other."""
        declared = self.headers.get("Content-Length")
        if declared is None:
            raise BadRequest(HTTPStatus.LENGTH_REQUIRED, "the request needs a Content-Length")
        try:
            length = int(declared)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = self.drain_after_answer = True  # where the body ends is unknown
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"Content-Length {declared}: a number of bytes, 0 or more")
        if length > MAX_BODY_BYTES:
            self.refuse_body(length)
            size = f"{length / 2**20:.1f} MB" if length < 2**40 else "over a terabyte"
            raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the image is {size}; the "
                                                                  f"limit is {MAX_BODY_BYTES // 2**20} MB")
        body = bytearray()
        try:
            while len(body) < length:  # the limit holds on what arrives, whatever was declared
                chunk = self.rfile.read1(min(length - len(body), 1 << 16))
                if not chunk:
                    break
                body += chunk
        except CONNECTION_ERRORS:
            self.close_connection = True
            raise BadRequest(HTTPStatus.REQUEST_TIMEOUT,
                             f"the body stopped arriving after {len(body):,} of {length:,} bytes") from None
        if len(body) < length and self.cut_off:
            raise BadRequest(HTTPStatus.REQUEST_TIMEOUT, f"{late()}; {len(body):,} of {length:,} bytes arrived")
        if len(body) < length:
            self.close_connection = True
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"the body ended after {len(body):,} of {length:,} bytes")
        return bytes(body)

    def refuse_body(self, length=None):
        """Read away a body that will not be used, up to DRAIN_BYTES, so the client reads the answer rather
        than a reset connection; past that, the answer is the connection's last."""
        if length is None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = DRAIN_BYTES + 1
        if not 0 <= length <= DRAIN_BYTES:
            self.close_connection = self.drain_after_answer = True
            return
        try:
            while length > 0:
                chunk = self.rfile.read1(min(length, 1 << 16))
                if not chunk:
                    break
                length -= len(chunk)
        except CONNECTION_ERRORS:
            self.close_connection = True

    def finish(self):
        """After an answer that ends the connection early, read away what the client still sends for a
        moment: closing on unread bytes resets the connection, and the answer could be lost with it."""
        if getattr(self, "drain_after_answer", False):
            try:
                self.wfile.flush()
                self.connection.settimeout(0.5)
                drained = 0
                while drained < DRAIN_BYTES and (chunk := self.rfile.read1(1 << 16)):
                    drained += len(chunk)
            except (OSError, ValueError):
                pass
        super().finish()

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (a malformed request line, an unknown method, headers too long), as
        JSON like every other answer. A request cut off at its deadline is not malformed: it is late."""
        self.close_connection = True
        if self.cut_off:
            code, message = HTTPStatus.REQUEST_TIMEOUT, late()
        if self.request_version == "HTTP/0.9":  # a request line too broken to name its version
            self.request_version = "HTTP/1.0"  # still answer with a status line and headers
        self.send_json({"error": message or HTTPStatus(code).phrase}, code)

    def send_json(self, answer, status=HTTPStatus.OK, head=False, extra_headers=None):
        self.send_body(json.dumps(answer).encode(), "application/json", status, head, extra_headers)

    def send_body(self, body, content_type, status=HTTPStatus.OK, head=False, extra_headers=None):
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (extra_headers or {}).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if not head:
                self.wfile.write(body)
        except CONNECTION_ERRORS:  # the client hung up first: nobody is left to answer
            self.close_connection = True

    def log_message(self, format, *args):
        pass  # one line per stroke would drown the address the user needs; errors reach the page


class DigitServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the standard library's 5 resets most of a burst of simultaneous clients

    def handle_error(self, request, client_address):
        """A client that hangs up mid-request is not an error of the server's: no traceback for it."""
        if not isinstance(sys.exc_info()[1], CONNECTION_ERRORS):
            super().handle_error(request, client_address)


def make_server(read, host="127.0.0.1", port=8000, read_number=None):
    """A threaded HTTP server for the page, bound and ready for serve_forever(); port 0 picks a free one.
    `read(file, ink, max_pixels)` reads one image file (use.read_digit for the served model), and
    `read_number` a written number in one (use.read_number)."""
    server = DigitServer((host, port), DigitPageHandler)
    server.read, server.read_number = read, read_number
    server.readers = threading.BoundedSemaphore(READERS)
    server.page = PAGE.read_bytes()
    return server


def address(server):
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"
