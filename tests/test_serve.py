"""`serve`: the draw-a-digit page and its /predict route, over real HTTP and in a real browser."""
import io
import json
import math
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import torch
import pytest
from PIL import Image

from conftest import import_or_needs, needs
import data
from digit_pictures import (EIGHTS, MOUSE_DIGITS, VARIANTS, draw, number_strokes, system_browser, transformed,
                            written_numbers)
import mnist_99_4
import use
import server

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model():
    return use.load_trained_model(ROOT / "mnist_net.pt", torch.device("cpu"))


@pytest.fixture(scope="module")
def address(model):
    """A server on a free port, in a thread, as `serve` runs it."""
    web = use.page_server(model, torch.device("cpu"), "127.0.0.1", 0)
    thread = threading.Thread(target=web.serve_forever, daemon=True)
    thread.start()
    yield server.address(web)
    web.shutdown()
    web.server_close()


@pytest.fixture(scope="module")
def test_digits(mnist_dir):
    images, labels = data.load_mnist(mnist_dir, train=False)
    return images[:12].numpy(), labels[:12].tolist()


def png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def as_drawn_on_paper(mnist_digit):
    """Dark ink on white, ten times larger: what a canvas sends."""
    return png(255 - np.kron(mnist_digit, np.ones((10, 10), dtype=np.uint8)))


def post(address, body, path="predict"):
    """(status, JSON answer) of a POST."""
    request = urllib.request.Request(address + path, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_page_is_served_and_self_contained(address):
    with urllib.request.urlopen(address, timeout=10) as response:
        page = response.read().decode()
        assert response.headers["Content-Type"].startswith("text/html")
    assert "<canvas" in page and "/predict" in page
    assert "http://" not in page and "https://" not in page  # works offline: nothing fetched from elsewhere


def test_real_test_digits_read_as_predict_reads_them(address, test_digits, tmp_path, capsys):
    images, labels = test_digits
    answers = [post(address, as_drawn_on_paper(image)) for image in images]
    assert all(status == 200 for status, _ in answers)
    for _, answer in answers:
        assert len(answer["probabilities"]) == 10 and math.isclose(sum(answer["probabilities"]), 1, abs_tol=1e-4)
        assert answer["seen"].startswith("data:image/png;base64,")
    digits = [answer["digit"] for _, answer in answers]
    assert sum(d == label for d, label in zip(digits, labels)) >= len(labels) - 1

    paths = []  # the command line reads the same files the same way
    for i, image in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        paths[-1].write_bytes(as_drawn_on_paper(image))
    mnist_99_4.main(["predict", *map(str, paths)])
    assert [int(line.split(": ")[1][0]) for line in capsys.readouterr().out.splitlines()] == digits


def test_concurrent_requests_each_get_their_own_answer(address, test_digits):
    images, labels = test_digits
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda image: post(address, as_drawn_on_paper(image)), list(images) * 2))
    alone = [post(address, as_drawn_on_paper(image))[1]["digit"] for image in images]
    assert [answer["digit"] for _, answer in answers] == alone * 2


@pytest.mark.slow
def test_a_burst_of_clients_connecting_at_once_is_not_reset(address, test_digits):
    """Every client connects before any is served: the queue of waiting connections must hold them all."""
    host, port = urlsplit(address).hostname, urlsplit(address).port
    body = as_drawn_on_paper(test_digits[0][0])
    clients = [socket.create_connection((host, port), timeout=30) for _ in range(200)]
    try:
        for client in clients:
            client.sendall(post_headers(len(body), "Connection: close\r\n") + body)
        replies = [b"".join(iter(lambda c=client: c.recv(65536), b"")) for client in clients]
    finally:
        for client in clients:
            client.close()
    assert all(reply.startswith(b"HTTP/1.0 200") or reply.startswith(b"HTTP/1.1 200") for reply in replies)


@pytest.fixture
def slow_server(model, monkeypatch):
    """A server whose every read takes half a second, and which waits at most 0.2 s for a free reader."""
    monkeypatch.setattr(server, "BUSY_WAIT_S", 0.2)
    cpu = torch.device("cpu")

    def slow_read(file, ink, max_pixels):
        time.sleep(0.5)
        return use.read_digit(model, file, cpu, ink, max_pixels)

    web = server.make_server(slow_read, port=0)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    yield server.address(web)
    web.shutdown()
    web.server_close()


def test_when_every_reader_is_busy_a_request_is_answered_503_not_left_waiting(slow_server, test_digits):
    body = as_drawn_on_paper(test_digits[0][0])
    with ThreadPoolExecutor(max_workers=3 * server.READERS) as pool:
        answers = list(pool.map(lambda _: post(slow_server, body), range(3 * server.READERS)))
    statuses = [status for status, _ in answers]
    assert statuses.count(200) == server.READERS and statuses.count(503) == 2 * server.READERS
    assert all(answer["error"].startswith("busy:") for status, answer in answers if status == 503)
    assert all(answer["digit"] == test_digits[1][0] for status, answer in answers if status == 200)


@pytest.mark.parametrize("pause", [0.2, 0.05], ids=["in its request line", "in its headers"])
@pytest.mark.slow
def test_a_client_that_trickles_its_request_is_cut_off_and_others_are_still_answered(address, test_digits,
                                                                                      monkeypatch, pause):
    """A byte every `pause` s never trips the socket's timeout; the whole-request deadline still ends it."""
    monkeypatch.setattr(server, "REQUEST_DEADLINE_S", 1.5)
    url = urlsplit(address)
    request = post_headers(100) + b"x" * 100
    trickling = [socket.create_connection((url.hostname, url.port), timeout=10) for _ in range(20)]
    started = time.perf_counter()
    replies = {client: b"" for client in trickling}
    for byte in range(len(request)):
        for client in trickling:
            try:
                client.sendall(request[byte:byte + 1])
            except OSError:
                pass  # already cut off
        if byte == 5:  # meanwhile, an ordinary client is answered at once
            quick = time.perf_counter()
            assert post(address, as_drawn_on_paper(test_digits[0][0]))[0] == 200
            assert time.perf_counter() - quick < 1
        if time.perf_counter() - started > 1.2:  # bytes sent to a closed connection would reset it
            break
        time.sleep(pause)
    for client in trickling:
        client.settimeout(5)
        replies[client] = b"".join(iter(lambda c=client: c.recv(65536), b""))
        client.close()
    assert time.perf_counter() - started < 10
    assert all(reply.split(b" ")[1] == b"408" and b"took longer than 1.5 s" in reply for reply in replies.values())


@pytest.mark.parametrize("body, status, fragment", [
    (b"this is text, not a picture", 400, "not an image"),
    (png(np.full((280, 280), 255, dtype=np.uint8)), 400, "no ink"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, 400, "not an image"),  # a PNG's signature, then nothing of it
    (png(np.full((280, 280), 255, dtype=np.uint8))[:-60], 400, "cut-short"),  # a canvas cut off in its pixels
    (b"x" * (server.MAX_BODY_BYTES + 1), 413, "limit"),
], ids=["text", "blank canvas", "PNG signature alone", "truncated PNG", "too large"])
def test_bad_requests_get_a_json_reason_and_the_server_goes_on(address, test_digits, body, status, fragment):
    answer_status, answer = post(address, body)
    assert answer_status == status and fragment in answer["error"]
    assert post(address, as_drawn_on_paper(test_digits[0][0]))[0] == 200


def raw_exchange(address, request, timeout=30):
    """Send raw request bytes on a new connection; (status, JSON answer) of what comes back before it closes."""
    url = urlsplit(address)
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as connection:
        try:
            connection.sendall(request)
        except OSError:
            pass  # the server may answer and stop reading before all is sent
        received = b""
        while True:
            try:
                chunk = connection.recv(1 << 16)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1."), received[:200]
    return int(head.split()[1]), json.loads(body) if body else None


def post_headers(length, extra=""):
    return (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n{extra}\r\n").encode()


def test_an_image_of_too_many_pixels_is_refused_in_one_line(address, test_digits, tmp_path, capsys):
    huge = tmp_path / "huge.png"  # 14000x14000 white: a 220 KB file that would be 200 million pixels
    Image.new("L", (14000, 14000), 255).save(huge)
    status, answer = post(address, huge.read_bytes())
    assert status == 400 and "too large" in answer["error"]
    good = tmp_path / "good.png"
    good.write_bytes(as_drawn_on_paper(test_digits[0][0]))
    assert mnist_99_4.main(["predict", str(huge), str(good)]) == 1  # the good file is still read
    out, err = capsys.readouterr()
    assert out.startswith(f"{good}: {test_digits[1][0]} (") and err.strip() == f"{huge}: error: {answer['error']}"


def test_a_request_may_not_decode_more_pixels_than_its_limit(address):
    """A 4000x4000 two-tone PNG is a 20 KB upload and 16 million decoded pixels: refused, in words."""
    buffer = io.BytesIO()
    Image.new("1", (4000, 4000), 1).save(buffer, "PNG")
    status, answer = post(address, buffer.getvalue())
    assert status == 400 and answer["error"] == ("the image is 4000x4000 pixels to decode; the limit here is "
                                                 f"{server.MAX_REQUEST_PIXELS / 1e6:g} million")


def test_a_negative_content_length_is_refused_before_the_body_is_read(address, test_digits):
    status, answer = raw_exchange(address, post_headers(-1) + b"x" * 1_000_000)
    assert status == 400 and "Content-Length -1" in answer["error"]
    assert post(address, as_drawn_on_paper(test_digits[0][0]))[0] == 200


def test_a_body_shorter_than_its_content_length_is_answered_not_hung(address, monkeypatch):
    monkeypatch.setattr(server.DigitPageHandler, "timeout", 1)
    status, answer = raw_exchange(address, post_headers(5000) + b"x" * 100, timeout=10)
    assert status == 408 and "stopped arriving after 100 of 5,000 bytes" in answer["error"]


def test_a_body_over_the_limit_is_answered_even_when_not_read(address):
    status, answer = raw_exchange(address, post_headers(100 * server.MAX_BODY_BYTES) + b"x" * 2_000_000)
    assert status == 413 and "limit" in answer["error"]


@pytest.mark.parametrize("request_line, status", [
    ("PUT /predict HTTP/1.1", 405), ("DELETE / HTTP/1.1", 405), ("OPTIONS / HTTP/1.1", 405),
    ("BREW /pot HTTP/1.1", 501), ("GET / HTTP/1.1 and more", 400), ("garbage", 400),
])
def test_every_other_request_gets_a_json_answer(address, request_line, status):
    answer_status, answer = raw_exchange(address, f"{request_line}\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
    assert answer_status == status and answer["error"]


def test_head_answers_the_pages_headers_without_a_body(address):
    with urllib.request.urlopen(urllib.request.Request(address, method="HEAD"), timeout=10) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/html")
        assert int(response.headers["Content-Length"]) > 0 and response.read() == b""


def test_forms_that_would_cost_far_more_than_their_size_are_refused_at_once(address):
    boundary = "b"
    many = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nx\r\n"
                   for i in range(40_000)) + f"--{boundary}--\r\n"
    def nested(levels):  # a form inside a form inside a form...
        body = ""
        for depth in reversed(range(levels)):
            body = (f"--n{depth}\r\nContent-Type: multipart/mixed; boundary=n{depth + 1}\r\n\r\n{body}"
                    f"\r\n--n{depth}--\r\n")
        return body

    for body, first, fragment in ((many, "b", "more than"), (nested(1000), "n0", "form"),
                                  (nested(5), "n0", "form within a form")):
        request = urllib.request.Request(address + "predict", data=body.encode(), method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={first}"})
        started = time.perf_counter()
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=30)
        assert error.value.code == 400 and fragment in json.load(error.value)["error"]
        assert time.perf_counter() - started < 1


def test_a_form_upload_is_read_as_the_raw_image_is(address, test_digits):
    image = as_drawn_on_paper(test_digits[0][0])
    boundary = "----digitform"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"digit.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(address + "predict", data=form, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        uploaded = json.load(response)
    assert uploaded == post(address, image)[1]
    empty_form = f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--{boundary}--\r\n"
    request = urllib.request.Request(address + "predict", data=empty_form.encode(), method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=30)
    assert error.value.code == 400 and "field named 'file'" in json.load(error.value)["error"]


def test_only_the_page_and_predict_are_served(address):
    for path in ("mnist_net.pt", "server.py", "web/draw.html", "../README.md", "%2e%2e/README.md"):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(address + path, timeout=10)
        assert error.value.code == 404
    assert post(address, b"x", path="upload")[0] == 404


def test_a_get_of_predict_says_to_post_an_image(address):
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(address + "predict", timeout=10)
    assert error.value.code == 405 and error.value.headers["Allow"] == "POST"
    assert "POST an image to /predict" in json.loads(error.value.read())["error"]


def test_the_ink_hint_reaches_the_reader(address, test_digits):
    """A digit on white paper inside a black frame: read off the border, the frame looks like the paper and
    the paper like ink; `?ink=dark`, as the page sends for its canvas, says otherwise."""
    images, labels = test_digits
    digit = 255 - np.asarray(Image.fromarray(images[0]).resize((140, 140), Image.BICUBIC))
    framed = np.zeros((200, 200), dtype=np.uint8)
    framed[30:170, 30:170] = digit
    guessed, told = post(address, png(framed))[1], post(address, png(framed), path="predict?ink=dark")[1]
    assert told["digit"] == int(labels[0]) and not told["unsure"]
    assert guessed["unsure"] or guessed["digit"] != int(labels[0])  # without the hint it is misread


def test_a_word_is_answered_unsure_and_a_digit_is_not(address, test_digits):
    from PIL import ImageDraw, ImageFont

    canvas = Image.new("L", (600, 200), 255)
    ImageDraw.Draw(canvas).text((20, 40), "hello", fill=0, font=ImageFont.load_default(110))
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    status, word = post(address, buffer.getvalue())
    assert status == 200 and word["unsure"] is True and word["doubt"]
    status, digit = post(address, as_drawn_on_paper(test_digits[0][0]))
    assert status == 200 and digit["unsure"] is False and digit["doubt"] is None


@pytest.mark.slow
def test_serve_prints_its_address_and_stops_cleanly_on_ctrl_c(test_digits):
    process = subprocess.Popen([sys.executable, "mnist_99_4.py", "serve", "--port", "0"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               # tests run as a background job start with SIGINT ignored, and Python
                               # keeps it so; a user's Ctrl-C reaches a foreground program
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = process.stdout.readline()
        address = line.split("Open ")[1].split()[0]
        with urllib.request.urlopen(address, timeout=10) as response:
            assert response.status == 200
        url = urlsplit(address)
        for _ in range(3):  # clients that hang up early: mid-body, and before reading a large answer
            with socket.create_connection((url.hostname, url.port)) as connection:
                connection.sendall(post_headers(50_000) + b"x" * 10)
            with socket.create_connection((url.hostname, url.port)) as connection:
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset on close
                connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert post(address, as_drawn_on_paper(test_digits[0][0]))[0] == 200
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0 and "stopped" in stdout and "Traceback" not in stderr


# ---------------------------------------------------------------- in a real browser

@pytest.fixture(scope="module")
def browser():
    playwright = import_or_needs("playwright.sync_api", "Playwright for Python is not installed")
    browser_path = system_browser()
    if not browser_path:
        needs("no Chromium installed (Debian: apt-get install chromium)")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(browser, address):
    page = browser.new_page(viewport={"width": 900, "height": 620})
    page.goto(address)
    yield page
    page.close()


def read_as_drawn(page, strokes):
    """What the page says a drawing is, starting from a clear canvas."""
    page.keyboard.press("Escape")
    draw(page, strokes)
    return page.locator("#digit").inner_text()


def test_mouse_drawn_eights_of_every_size_and_slant_are_read(page):
    misread = [(name, scale, slant, shown) for name, strokes, scale, slant in EIGHTS
               if (shown := read_as_drawn(page, transformed(strokes, scale, slant))) != "8"]
    assert len(misread) <= 1, f"{len(misread)} of {len(EIGHTS)} eights misread (style, size, slant, read): {misread}"


def test_mouse_drawn_digits_large_small_and_leaning_are_read(page):
    misread = [(digit, variant, shown) for digit in range(10) for variant in VARIANTS
               if (shown := read_as_drawn(page, transformed(MOUSE_DIGITS[digit], **variant))) != str(digit)]
    assert len(misread) <= 2, f"{len(misread)} of 50 digits misread: {misread}"


def test_a_seven_whose_bar_runs_off_the_edge_is_read(page):
    # The bar drawn from the right on past the left edge (the page keeps the pointer), then the stem.
    assert read_as_drawn(page, [[(0.7, 0.12), (-0.06, 0.12)], [(0.7, 0.12), (0.42, 0.86)]]) == "7"
    # In one stroke, begun at the very edge, so that the bar's end touches the frame.
    assert read_as_drawn(page, [[(0.01, 0.12), (0.7, 0.12), (0.42, 0.86)]]) == "7"
    # A small one in a corner, its bar along the top edge.
    assert read_as_drawn(page, [[(0.55, 0.01), (0.97, 0.01), (0.8, 0.45)]]) == "7"


@pytest.mark.parametrize("digit", sorted(MOUSE_DIGITS))
def test_a_digit_drawn_with_the_mouse_is_read_on_the_page(page, digit):
    page.keyboard.press("Escape")
    draw(page, MOUSE_DIGITS[digit])
    assert page.locator("#digit").inner_text() == str(digit)
    assert page.locator("#status").inner_text() == f"It reads {digit}."
    top_row = page.locator("#bars li.top span").first.inner_text()
    assert top_row == str(digit)
    if digit == 3 and os.environ.get("SCREENSHOT"):  # SCREENSHOT=images/draw_page.png: the README's picture
        page.screenshot(path=os.environ["SCREENSHOT"])


def test_numbers_written_with_the_mouse_are_read_on_the_page(page):
    page.check("#number-mode")
    try:
        read = {}
        for number, strokes in written_numbers():
            page.keyboard.press("Escape")
            draw(page, strokes)
            read[number] = page.locator("#digit").inner_text()
        assert sum(shown == number for number, shown in read.items()) >= 9, read
        assert page.locator("#digits-seen img").count() == 4 and page.locator("#bars").is_hidden()
        if os.environ.get("SCREENSHOT_NUMBER"):  # the README's picture of the number mode
            page.screenshot(path=os.environ["SCREENSHOT_NUMBER"])
        page.keyboard.press("Escape")  # 12.5, its point a tap on the line between the 2 and the 5
        one, two, five = number_strokes([1, 2, 5], [{}] * 3)
        draw(page, [one, two, [(0.5 + 0.1, 0.2 + 0.6 * 0.8)], five])
        assert page.locator("#digit").inner_text() == "12.5"
    finally:
        page.uncheck("#number-mode")
    assert page.locator("#canvas").evaluate("canvas => canvas.width") == 280  # back to one digit


def test_a_number_is_answered_digit_by_digit_with_boxes(address, test_digits):
    images, labels = test_digits
    row = np.concatenate([np.pad(images[i], ((4, 4), (6, 6))) for i in range(4)], axis=1)
    status, answer = post(address, png(255 - np.kron(row, np.ones((4, 4), dtype=np.uint8))), "predict?number=1")
    assert status == 200 and answer["number"] == "".join(str(labels[i]) for i in range(4))
    assert post(address, png(255 - row), "predict?number=2") == (400, {"error": "number=2: 1 (read every digit) or 0"})
    blank, marks = np.full((100, 300), 255, dtype=np.uint8), np.full((300, 900), 255, dtype=np.uint8)
    for k in range(40):  # forty strokes in a row: a page of writing
        marks[100:200, 10 + 22 * k:18 + 22 * k] = 0
    assert post(address, png(blank), "predict?number=1")[1]["error"].startswith("no ink")
    assert post(address, png(marks), "predict?number=1") == (400, {"error": "more than 12 marks (40): is this a number?"})
    boxes = [d["box"] for d in answer["digits"]]
    assert [x for x, _, _, _ in boxes] == sorted(x for x, _, _, _ in boxes) and len(boxes) == 4
    assert all(d["seen"].startswith("data:image/png;base64,") and 0 < d["probability"] <= 1 for d in answer["digits"])


def test_a_decimal_point_is_answered_in_the_number_and_not_as_a_digit(address, test_digits):
    images, labels = test_digits
    point = np.zeros((36, 10), dtype=np.uint8)
    point[25:28, 4:7] = 255  # on the digits' baseline, in the paper between the second and the third
    row = np.concatenate([np.pad(images[0], ((4, 4), (6, 6))), np.pad(images[1], ((4, 4), (6, 6))), point,
                          np.pad(images[2], ((4, 4), (6, 6)))], axis=1)
    status, answer = post(address, png(255 - np.kron(row, np.ones((4, 4), dtype=np.uint8))), "predict?number=1")
    assert status == 200 and answer["number"] == f"{labels[0]}{labels[1]}.{labels[2]}"
    assert [d["digit"] for d in answer["digits"]] == [int(labels[i]) for i in range(3)]


def test_a_number_small_in_a_phone_photo_over_the_pixel_limit_is_read_finer_within_it(address, test_digits):
    """A 12-megapixel JPEG, over the 10 million pixels a request may decode, is first read at an eighth of its
    size, where its digits (28-pixel boxes 42 pixels tall) are 5 pixels tall and read `1`; the number is read
    again at half size (3 million pixels), and its boxes are given in the photo's own pixels."""
    from digit_pictures import small_in_a_photo

    images, labels = test_digits
    row = np.concatenate([np.pad(images[i], ((6, 6), (2, 2))) for i in range(4)], axis=1)
    photo, (left, top, width, height) = small_in_a_photo(Image.fromarray(255 - row), 60, at=(2000, 900))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG")
    status, answer = post(address, buffer.getvalue(), "predict?number=1")
    assert status == 200 and answer["number"] == "".join(str(labels[i]) for i in range(4)), answer.get("number")
    for x, y, w, h in (digit["box"] for digit in answer["digits"]):
        assert left <= x and x + w <= left + width and top <= y and y + h <= top + height


def ink_on_canvas(page):
    """How many of the canvas's pixels are not white."""
    return page.evaluate("""() => {
        const c = document.getElementById("canvas"), d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 250) n++; return n; }""")


def test_a_tap_leaves_a_dot_and_escape_after_a_stroke_starts_again_quietly(page):
    page.keyboard.press("Escape")
    assert page.locator("#status").inner_text() == "Draw a digit to start."
    draw(page, [[(0.5, 0.5)]])  # a tap
    assert ink_on_canvas(page) > 0 and page.locator("#status").get_attribute("class") != "error"
    page.keyboard.press("Escape")
    box = page.locator("#canvas").bounding_box()  # a stroke, and Escape at once, before it is read
    page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.3 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.7 * box["width"], box["y"] + 0.7 * box["height"], steps=5)
    page.mouse.up()
    page.keyboard.press("Escape")
    page.wait_for_timeout(600)
    assert page.locator("#status").inner_text() == "Draw a digit to start."
    assert page.locator("#digit").inner_text() == "" and ink_on_canvas(page) == 0


def test_clear_cancels_an_answer_on_its_way(page, monkeypatch):
    slow_reader = server.read_image

    def slowly(*args):
        import time
        time.sleep(0.8)
        return slow_reader(*args)

    monkeypatch.setattr(server, "read_image", slowly)
    page.keyboard.press("Escape")
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.2 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.8 * box["height"], steps=5)
    page.mouse.up()
    page.wait_for_timeout(400)  # the drawing has been sent
    page.keyboard.press("Escape")
    page.wait_for_timeout(1500)  # its answer has come back by now
    assert page.locator("#digit").inner_text() == "" and page.locator("#status").inner_text() == "Draw a digit to start."


def test_the_model_saw_box_is_blank_before_anything_is_read(page):
    page.keyboard.press("Escape")
    assert page.locator("#seen").get_attribute("src") is None
    assert page.locator("#seen").evaluate("image => getComputedStyle(image).visibility") == "hidden"


def test_errors_are_in_plain_words_and_a_new_file_replaces_the_old(page, tmp_path, test_digits):
    page.keyboard.press("Escape")
    photo = tmp_path / "seven.png"
    photo.write_bytes(as_drawn_on_paper(test_digits[0][0]))
    page.locator("#file").set_input_files(str(photo))
    page.wait_for_function("document.getElementById('status').textContent.startsWith('It reads')")
    assert page.locator("#status").inner_text() == "It reads 7 in seven.png." and ink_on_canvas(page) > 0

    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a picture")
    page.locator("#file").set_input_files(str(text_file))
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Could not read it')")
    status = page.locator("#status").inner_text()
    assert "not an image file" in status and "PIL" not in status
    assert page.locator("#digit").inner_text() == "" and ink_on_canvas(page) == 0  # the seven is gone


def test_the_page_says_when_the_server_is_not_running(page):
    page.keyboard.press("Escape")
    page.route("**/predict**", lambda route: route.abort())  # as a stopped server: nothing answers
    try:
        draw(page, MOUSE_DIGITS[1])
        assert "server is not running" in page.locator("#status").inner_text()
    finally:
        page.unroute("**/predict**")


def test_on_a_phone_the_answer_is_in_view_while_drawing(browser, address):
    phone = browser.new_page(viewport={"width": 390, "height": 844}, has_touch=True)
    try:
        phone.goto(address)
        draw(phone, MOUSE_DIGITS[3])
        assert phone.locator("#digit").inner_text() == "3"
        for part in ("#canvas", "#digit", "#status"):
            box = phone.locator(part).bounding_box()
            assert box["y"] >= 0 and box["y"] + box["height"] <= 844, f"{part} is out of view: {box}"
        if os.environ.get("SCREENSHOT_PHONE"):
            phone.screenshot(path=os.environ["SCREENSHOT_PHONE"])
    finally:
        phone.close()
