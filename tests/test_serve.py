"""`serve`: the draw-a-digit page and its /predict route, over real HTTP and in a real browser."""
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import pytest
from PIL import Image

import data
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
    cpu = torch.device("cpu")
    web = server.make_server(lambda digit: use.digit_probabilities(model, digit, cpu).tolist(), port=0)
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


@pytest.mark.parametrize("body, status, fragment", [
    (b"this is text, not a picture", 400, "not an image"),
    (png(np.full((280, 280), 255, dtype=np.uint8)), 400, "no ink"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, 400, ""),  # a PNG cut short
    (b"x" * (server.MAX_BODY_BYTES + 1), 413, "limit"),
], ids=["text", "blank canvas", "truncated PNG", "too large"])
def test_bad_requests_get_a_json_reason_and_the_server_goes_on(address, test_digits, body, status, fragment):
    answer_status, answer = post(address, body)
    assert answer_status == status and fragment in answer["error"]
    assert post(address, as_drawn_on_paper(test_digits[0][0]))[0] == 200


def test_only_the_page_and_predict_are_served(address):
    for path in ("mnist_net.pt", "server.py", "web/draw.html", "../README.md", "%2e%2e/README.md"):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(address + path, timeout=10)
        assert error.value.code == 404
    assert post(address, b"x", path="upload")[0] == 404


def test_serve_prints_its_address_and_stops_cleanly_on_ctrl_c():
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
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0 and "stopped" in stdout and "Traceback" not in stderr


# ---------------------------------------------------------------- in a real browser

# Digits as a person draws them with the mouse: strokes of points in a 0-1 box, y pointing down.
def arc(cx, cy, rx, ry, start, end, steps=24):
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(start, end, steps)]


MOUSE_DIGITS = {
    0: [arc(0.5, 0.5, 0.2, 0.3, -90, 275)],
    1: [[(0.52, 0.18), (0.48, 0.82)]],
    2: [arc(0.5, 0.36, 0.17, 0.16, -170, 35) + [(0.3, 0.8), (0.72, 0.8)]],
    3: [arc(0.48, 0.34, 0.16, 0.14, -160, 90) + arc(0.48, 0.64, 0.18, 0.16, -90, 150)],
    4: [[(0.55, 0.18), (0.28, 0.6), (0.76, 0.6)], [(0.62, 0.35), (0.62, 0.85)]],
    5: [[(0.7, 0.2), (0.37, 0.2), (0.34, 0.47)] + arc(0.49, 0.63, 0.18, 0.17, -125, 150)],
    6: [[(0.64, 0.17), (0.45, 0.35), (0.35, 0.62)] + arc(0.5, 0.65, 0.15, 0.15, 180, 540)],
    7: [[(0.28, 0.2), (0.72, 0.2), (0.45, 0.84)]],
    8: [arc(0.5, 0.33, 0.13, 0.14, 90, 450) + arc(0.5, 0.64, 0.17, 0.17, -90, 270)],
    9: [arc(0.5, 0.36, 0.15, 0.15, 0, 360) + [(0.65, 0.36), (0.6, 0.84)]],
}


def system_browser():
    """A Chromium-family browser: $BROWSER if set (the GitHub workflow sets it), else one on the PATH."""
    if os.environ.get("BROWSER"):
        return os.environ["BROWSER"]
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
    return next((shutil.which(name) for name in names if shutil.which(name)), None)


@pytest.fixture(scope="module")
def page(address):
    playwright = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    browser_path = system_browser()
    if not browser_path:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 900, "height": 620})
        page.goto(address)
        yield page
        browser.close()


def draw(page, strokes):
    """Press the mouse, move it along each stroke, release; then wait until the page has read the drawing."""
    box = page.locator("#canvas").bounding_box()
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0] * box["width"], box["y"] + stroke[0][1] * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=3)
        page.mouse.up()
    page.wait_for_selector('#answer[aria-busy="false"]')  # the last drawing has been read


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


def test_the_page_says_why_when_there_is_nothing_to_read(page, tmp_path):
    page.keyboard.press("Escape")
    assert page.locator("#status").inner_text() == "Draw a digit to start."
    draw(page, [[(0.5, 0.5)]])  # a click on blank paper: the server finds no ink
    assert page.locator("#status").inner_text() == "Nothing drawn yet: draw a digit."
    assert page.locator("#digit").inner_text() == ""

    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a picture")
    page.locator("#file").set_input_files(str(text_file))
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Could not read it')")
    assert "not an image" in page.locator("#status").inner_text()

    draw(page, MOUSE_DIGITS[7])  # and the page still works
    assert page.locator("#digit").inner_text() == "7"
