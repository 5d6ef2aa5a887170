"""How long `POST /predict` takes for a drawn canvas, by torch thread count, on a quiet or a busy machine.

    python benchmarks/serve_latency.py                   # threads 1 and 2, the machine as it is
    python benchmarks/serve_latency.py --busy 2          # with two busy processes beside the server

The page posts its 280x280 canvas, dark ink on white, a few times a second while a digit is drawn,
so what matters is one image's latency. This starts `python mnist_99_4.py serve --threads N` with
each --threads value in turn, interleaved over --rounds (so a machine whose load drifts treats
them alike), posts the same canvas PNG --requests times each round from this process, and prints
the median and 90th percentile in milliseconds, start of request to end of answer, then the time
of the image preparation and of the forward pass alone (in this process). --busy N runs N
processes that spin on the CPU meanwhile, as a machine busy with training is. Writes the table to
--out when given.
"""
import argparse
import io
import math
import multiprocessing
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
import digit_image  # noqa: E402
import use  # noqa: E402


def drawn_eight(size=280, width=20):
    """A canvas as the page sends it: an 8 of two loops, black strokes on white, as PNG bytes."""
    image = Image.new("L", (size, size), 255)
    pen = ImageDraw.Draw(image)
    for cx, cy, r in ((0.5, 0.33, 0.14), (0.5, 0.65, 0.17)):
        points = [(size * (cx + r * math.cos(a)), size * (cy + r * math.sin(a)))
                  for a in np.linspace(0, 2 * math.pi, 40)]
        pen.line(points, fill=0, width=width, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def spin():
    while True:
        pass


def post_times(address, body, requests):
    """Milliseconds of each of `requests` POSTs of `body` to /predict?ink=dark."""
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(address + "predict?ink=dark", data=body), timeout=30) as r:
            r.read()
        times.append(1000 * (time.perf_counter() - started))
    return times


def one_server_round(threads, body, requests):
    """Request times of one `serve --threads THREADS` process, started for the round and stopped after."""
    process = subprocess.Popen([sys.executable, "mnist_99_4.py", "serve", "--port", "0", "--threads", str(threads)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        address = process.stdout.readline().split("Open ")[1].split()[0]
        post_times(address, body, 3)  # warm-up: first calls pick kernels
        return post_times(address, body, requests)
    finally:
        process.terminate()
        process.wait(timeout=30)


def parts(model, body, threads, repeats=30):
    """Median milliseconds of the image preparation and of the forward pass alone."""
    torch.set_num_threads(threads)
    cpu = torch.device("cpu")
    prepare, forward = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        digit = digit_image.load_digit(io.BytesIO(body), "dark")
        middle = time.perf_counter()
        use.digit_logits(model, digit, cpu)
        prepare.append(1000 * (middle - started))
        forward.append(1000 * (time.perf_counter() - middle))
    return statistics.median(prepare), statistics.median(forward)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default: 1 2)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each thread count once a round (default: 3)")
    parser.add_argument("--requests", type=int, default=40, help="requests a round (default: 40)")
    parser.add_argument("--busy", type=int, default=0, help="busy processes beside the server (default: 0)")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args()

    model = use.load_trained_model(use.SHIPPED_WEIGHTS, torch.device("cpu"))
    body = drawn_eight()
    spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy)]
    for process in spinners:
        process.start()
    try:
        times = {threads: [] for threads in args.threads}
        for i in range(args.rounds):
            for threads in (args.threads if i % 2 == 0 else args.threads[::-1]):
                times[threads] += one_server_round(threads, body, args.requests)
        split = {threads: parts(model, body, threads) for threads in args.threads}
    finally:
        for process in spinners:
            process.terminate()

    rows = [f"| {threads} | {statistics.median(t):.1f} | {np.percentile(t, 90):.1f} | {split[threads][0]:.1f} | "
            f"{split[threads][1]:.1f} |" for threads, t in times.items()]
    command = " ".join(["python", "benchmarks/serve_latency.py", *sys.argv[1:]])
    table = "\n".join([f"`{command}` ({args.rounds} rounds of {args.requests} requests, a 280x280 canvas PNG of an 8, "
                       f"{args.busy} busy processes beside the server, torch {torch.__version__})", "",
                       "| threads | median ms | 90th percentile ms | preparing the image, ms | forward pass, ms |",
                       "|---|---|---|---|---|", *rows, ""])
    print(table)
    if args.out:
        data.write_atomically(args.out, table.encode())
        print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
