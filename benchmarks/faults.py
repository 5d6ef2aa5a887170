"""A fault campaign: what an unkind user, machine or network does to the program, and what comes back.

    python benchmarks/faults.py        # about a minute; writes benchmarks/results/faults.md

Each row is one fault, what should happen, what did, and whether the two agree. The program runs as
a user runs it, in its own process: `serve` on a free port, training runs with --dry-run, and
`predict`, `evaluate` and `export` on the command line.
- The server: a burst of 500 clients; 1,000 clients that trickle a byte a second, with an ordinary
  client among them; the largest image it accepts, and one it must refuse, with the memory each
  cost; forms that cost far more than their size; broken uploads.
- Training: kill -9 at random moments and resume, a folder that holds an interrupted run, two runs
  on one folder, a damaged model file.
- Disks: a full disk and a read-only one (small tmpfs mounts, where this machine lets the campaign
  mount them; the rows say so where it does not) for training, the data fetch, `predict
  --show-crop`, `evaluate` and `export`.
It exits 1 if any row disagrees.
"""
import argparse
import io
import json
import os
import random
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
import runs  # noqa: E402
import server  # noqa: E402

ROWS = []  # (fault, expected, observed, agrees)


def row(fault, expected, observed, agrees):
    ROWS.append((fault, expected, observed, bool(agrees)))
    print(f"{'ok ' if agrees else 'BAD'} {fault}: {observed}", flush=True)


def cli(*args, timeout=300):
    """(exit code, stdout, stderr) of the program run as a user runs it; a run that hangs is killed."""
    try:
        done = subprocess.run([sys.executable, "mnist_99_4.py", *map(str, args)], cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", f"hung: killed after {timeout} s"
    return done.returncode, done.stdout, done.stderr


def one_error_line(code, stderr):
    """Whether a run ended as a failure should: a non-zero exit, `error:` lines and no traceback."""
    lines = [line.rsplit("\r", 1)[-1].strip() for line in stderr.split("\n")]  # after any progress bar
    lines = [line for line in lines if line]
    return code not in (0, None) and "Traceback" not in stderr and lines and all(line.startswith("error: ") for line in lines)


def drawn_digit_png():
    """A 7 drawn dark on white at 280 px, as the page's canvas sends one."""
    canvas = Image.new("L", (280, 280), 255)
    from PIL import ImageDraw
    ImageDraw.Draw(canvas).line([(70, 60), (210, 60), (120, 230)], fill=0, width=22)
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------- the server


@contextmanager
def serving():
    process = subprocess.Popen([sys.executable, "mnist_99_4.py", "serve", "--port", "0"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        address = process.stdout.readline().split("Open ")[1].split()[0]
        host, port = address.split("//")[1].rstrip("/").split(":")
        yield process, (host, int(port))
    finally:
        process.kill()
        process.wait()


def request(where, body, headers="", timeout=60):
    """(status, JSON answer) of one POST /predict on its own connection; status 0 for no answer."""
    try:
        with socket.create_connection(where, timeout=timeout) as connection:
            connection.sendall(f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{headers}"
                               "Connection: close\r\n\r\n".encode() + body)
            reply = b"".join(iter(lambda: connection.recv(65536), b""))
    except OSError as error:
        return 0, {"error": f"no answer ({error})"}
    head, _, payload = reply.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/"):
        return 0, {"error": "no answer"}
    return int(head.split()[1]), json.loads(payload or b"{}")


def peak_memory_mb(process):
    """The peak resident memory of a process so far (Linux), in MB."""
    with open(f"/proc/{process.pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def server_rows():
    digit = drawn_digit_png()
    with serving() as (process, where):
        request(where, digit)  # the first read loads what a read needs
        before = peak_memory_mb(process)
        largest = Image.new("RGBA", (2500, 3999), "white")  # a digit on a page of 10 million pixels
        largest.paste(Image.open(io.BytesIO(digit)).resize((1200, 1200)), (900, 1400))
        buffer = io.BytesIO()
        largest.save(buffer, "PNG")
        status, answer = request(where, buffer.getvalue())
        grew = peak_memory_mb(process) - before
        row(f"an RGBA PNG of 10 million pixels, the most a request may decode ({len(buffer.getvalue()) // 1024} KB)",
            "read, with under 100 MB", f"{status} (read {answer.get('digit')}), the server's peak memory grew "
            f"{grew:.0f} MB", status == 200 and grew < 100)
        buffer = io.BytesIO()
        Image.new("1", (7000, 7000), 1).save(buffer, "PNG")
        before = peak_memory_mb(process)
        status, answer = request(where, buffer.getvalue())
        grew = peak_memory_mb(process) - before
        row(f"a two-tone PNG of 49 million pixels ({len(buffer.getvalue()) // 1024} KB)", "JSON 400, under 100 MB",
            f"{status}: {answer.get('error')}; the peak memory grew {grew:.0f} MB", status == 400 and grew < 100)

        for name, body, content_type in forms():
            started = time.perf_counter()
            status, answer = request(where, body, f"Content-Type: {content_type}\r\n")
            seconds = time.perf_counter() - started
            row(name, "JSON 400 within 1 s", f"{status} in {seconds:.2f} s: {answer.get('error')}",
                status == 400 and seconds < 1)
        for name, body in (("an empty body", b""), ("text", b"not a picture"),
                           ("a PNG cut short", digit[:len(digit) // 2]), ("a PNG header only", digit[:8])):
            status, answer = request(where, body)
            row(f"an upload of {name}", "JSON 400", f"{status}: {answer.get('error')}", status == 400)

        statuses = burst(where, digit, 500)
        row("500 clients connect at once, then each POSTs a drawn 7", "every one answered: the digit or JSON 503",
            f"{statuses.count(200)} read, {statuses.count(503)} busy, {len(statuses) - statuses.count(200) - statuses.count(503)} other",
            set(statuses) <= {200, 503})
        trickle_row(where, digit, min(1000, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 2 - 100))
        row("the server after all of the above", "still serving", f"{request(where, digit)[0]}",
            process.poll() is None)


def forms():
    many = "".join(f"--b\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nx\r\n" for i in range(40_000))
    nested = ""
    for depth in reversed(range(1000)):
        nested = f"--n{depth}\r\nContent-Type: multipart/mixed; boundary=n{depth + 1}\r\n\r\n{nested}\r\n--n{depth}--\r\n"
    return [("a form of 40,000 parts", (many + "--b--\r\n").encode(), "multipart/form-data; boundary=b"),
            ("a form nested 1,000 deep", nested.encode(), "multipart/form-data; boundary=n0")]


def burst(where, body, count):
    """Statuses of `count` clients that all connect, then all send, before any answer is read."""
    clients = [socket.create_connection(where, timeout=120) for _ in range(count)]
    message = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
               .encode() + body)
    for client in clients:
        try:
            client.sendall(message)
        except OSError:  # reset: the server's queue had no room for it
            pass

    def answer(client):
        try:
            with client:
                reply = b"".join(iter(lambda: client.recv(65536), b""))
        except OSError:
            reply = b""
        return int(reply.split()[1]) if reply.startswith(b"HTTP/") else 0

    with ThreadPoolExecutor(64) as pool:
        return list(pool.map(answer, clients))


def trickle_row(where, digit, count):
    """`count` clients send their request a byte a second; an ordinary one is timed among them."""
    clients = [socket.create_connection(where, timeout=120) for _ in range(count)]
    message = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(digit)}\r\n\r\n".encode() + digit
    started, closed, stop = time.perf_counter(), {}, threading.Event()

    def trickle():
        for position in range(len(message)):
            for client in clients:
                if client not in closed:
                    try:
                        client.sendall(message[position:position + 1])
                    except OSError:
                        closed[client] = time.perf_counter() - started
            if stop.wait(1) or time.perf_counter() - started > server.REQUEST_DEADLINE_S - 3:
                return  # a client that went on sending to a closed connection would be reset, its answer lost

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    time.sleep(3)
    quick = time.perf_counter()
    status, _ = request(where, digit)
    answered = time.perf_counter() - quick
    for client in clients:  # what the server says once the deadline passes
        client.settimeout(server.REQUEST_DEADLINE_S + 15 - (time.perf_counter() - started))
    late = 0
    for client in clients:
        try:
            reply = b"".join(iter(lambda: client.recv(65536), b""))
        except OSError:
            reply = b""
        late += b" 408 " in reply[:20]
        closed.setdefault(client, time.perf_counter() - started)
        client.close()
    stop.set()
    slowest = max(closed.values())
    row(f"{count:,} clients each send their request a byte a second",
        f"an ordinary client answered within 1 s; each slow one answered 408 and closed at the "
        f"{server.REQUEST_DEADLINE_S} s deadline",
        f"ordinary client: {status} in {answered:.2f} s; {late:,} answered 408, the last closed at {slowest:.0f} s",
        status == 200 and answered < 1 and late == count and slowest < server.REQUEST_DEADLINE_S + 10)


# ---------------------------------------------------------------- training runs


def training_rows(scratch, data_dir):
    common = ["--dry-run", "--epochs", "15", "--seed", "3", "--data-dir", data_dir, "--device", "cpu"]
    began = time.perf_counter()
    cli(*common, "--out", scratch / "straight")
    straight, run_seconds = final(scratch / "straight"), time.perf_counter() - began
    rng = random.Random(0)
    for attempt in range(4):
        out = scratch / f"killed{attempt}"
        process = subprocess.Popen([sys.executable, "mnist_99_4.py", *common, "--out", str(out)], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        delay = rng.uniform(0.4, 0.95) * run_seconds  # most of a dry run is its start-up
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        resumed = ("--resume", out / "checkpoint.pt") if (out / "checkpoint.pt").exists() else ()
        code, _, stderr = cli(*(resumed or (*common, "--out", out)))
        debris = sorted(path.name for path in out.glob(".*.tmp"))
        row(f"kill -9 at {delay:.1f} s into a run, then " + ("--resume" if resumed else "the run again"),
            "ends as the uninterrupted run, nothing left behind",
            f"exit {code}; " + ("the same accuracy and losses" if final(out) == straight else "DIFFERENT results")
            + (f"; left {debris}" if debris else ""),
            code == 0 and final(out) == straight and not debris)

    interrupted = scratch / "interrupted"
    interrupted.mkdir()
    (interrupted / "checkpoint.pt").write_bytes(b"an interrupted run's state")
    code, _, stderr = cli(*common, "--out", interrupted)
    row("a new run on a folder that holds an interrupted run", "refused, with the resume command, nothing lost",
        stderr.strip(), one_error_line(code, stderr) and "--resume" in stderr
        and (interrupted / "checkpoint.pt").read_bytes() == b"an interrupted run's state")

    shared = scratch / "shared"
    first = subprocess.Popen([sys.executable, "mnist_99_4.py", *common, "--epochs", "300", "--out", str(shared)],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (shared / runs.LOCK_NAME).exists() and first.poll() is None:
        time.sleep(0.1)
    code, _, stderr = cli(*common, "--out", shared)
    first.kill()
    first.wait()
    row("a second run on the folder a run is writing to", "refused", stderr.strip(), one_error_line(code, stderr))

    damaged = scratch / "straight" / "model.pt"
    weights = bytearray(damaged.read_bytes())
    for i in range(64):
        weights[len(weights) // 2 + i] ^= 0xFF
    damaged.write_bytes(bytes(weights))
    code, _, stderr = cli("evaluate", "--checkpoint", damaged, "--data-dir", data_dir)
    row("a model.pt with 64 flipped bytes", "refused in one line", stderr.strip(), one_error_line(code, stderr))

    fifo = scratch / "pipe.png"
    os.mkfifo(fifo)
    code, _, stderr = cli("predict", fifo, timeout=60)
    row("predict on a named pipe", "one line, no hang", stderr.strip(), code not in (0, None) and "Traceback" not in stderr)


def final(out):
    metrics = json.loads((Path(out) / "metrics.json").read_text())
    return metrics["test_accuracy"], [row["test_loss"] for row in metrics["history"]]


# ---------------------------------------------------------------- disks


@contextmanager
def small_disk(folder, kind, keep=()):
    """A 2 MB tmpfs at `folder` holding copies of the files `keep`, then full (a file fills it) or
    mounted read-only; None where mounting fails."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    try:
        for path in keep if mounted else ():
            shutil.copy(path, folder)
        if mounted and kind == "full":
            with open(folder / "filler", "wb", buffering=0) as filler:
                try:
                    while True:
                        filler.write(b"\0" * 65536)
                except OSError:  # full
                    pass
        elif mounted:
            mounted = subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True).returncode == 0
        yield folder if mounted else None
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


def disk_rows(scratch, data_dir):
    picture = scratch / "seven.png"
    picture.write_bytes(drawn_digit_png())
    commands = {
        "training": lambda disk: ("--dry-run", "--data-dir", data_dir, "--out", disk / "run"),
        "the data fetch": lambda disk: ("evaluate", "--data-dir", disk / "data"),
        "predict --show-crop": lambda disk: ("predict", "--show-crop", disk / picture.name),
        "evaluate --confusion-png": lambda disk: ("evaluate", "--data-dir", data_dir, "--confusion-png",
                                                  disk / "confusion.png"),
        "export --onnx": lambda disk: ("export", "--onnx", disk / "model.onnx"),
    }
    for kind in ("full", "read-only"):
        for number, (name, arguments) in enumerate(commands.items()):
            keep = [picture] if name.startswith("predict") else []
            with small_disk(scratch / f"{kind}-{number}", kind, keep) as disk:
                if disk is None:
                    row(f"{name} on a {kind} disk", "one error line", "not run: this machine cannot mount a tmpfs",
                        True)
                    continue
                code, stdout, stderr = cli(*arguments(disk))
                said = (stderr.strip() or stdout.strip()).splitlines()[-1]
                ends_well = (one_error_line(code, stderr) if not name.startswith("predict")  # the digit, then why
                             else code != 0 and "Traceback" not in stderr and "cannot write" in stdout)
                row(f"{name} on a {kind} disk", "one error line naming the path and the cause", said, ends_well)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default="benchmarks/results/faults.md")
    args = parser.parse_args()
    commit = runs.git_commit()
    # 1,000 slow clients hold 1,000 sockets here and as many in the server, which inherits this limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    data.prepare_mnist(args.data_dir)
    data_dir = os.path.abspath(args.data_dir)
    started = time.perf_counter()
    server_rows()
    with tempfile.TemporaryDirectory() as scratch:
        training_rows(Path(scratch), data_dir)
        disk_rows(Path(scratch), data_dir)
    seconds = time.perf_counter() - started

    def cell(text):  # no path of this machine in the table
        text = str(text).replace(scratch, "SCRATCH").replace(str(ROOT), ".")
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| fault | expected | observed | as expected |", "|---|---|---|---|"]
    lines += [f"| {cell(f)} | {cell(e)} | {cell(o)} | {'yes' if ok else '**no**'} |" for f, e, o, ok in ROWS]
    command = shlex.join(["python", "benchmarks/faults.py", *sys.argv[1:]])
    agreed = sum(ok for *_, ok in ROWS)
    report = "\n".join([f"`{command}` (commit {commit}; {seconds:.0f} s)", "", *lines, "",
                        f"{agreed} of {len(ROWS)} rows as expected."])
    data.write_atomically(args.out, (report + "\n").encode())
    print(f"\n{agreed} of {len(ROWS)} rows as expected; wrote {args.out}")
    return 0 if agreed == len(ROWS) else 1


if __name__ == "__main__":
    sys.exit(main())
