"""Read digits drawn with any pen, and pictures that are not digits, as `predict` does.

    python benchmarks/pens.py                       # the held-out sets; writes benchmarks/results/pens.md
    python benchmarks/pens.py --figure worst.png    # also the worst cases and what the model saw

Three sets, each through `use.read_digit`, exactly the path of `python mnist_99_4.py predict`:
- real MNIST test digits redrawn along their centrelines with a round pen whose width is 1% to 15%
  of the digit's height, with a ballpoint's varying pressure, on canvases of 200-3000 px, with a
  camera's blur and JPEG compression, on white paper or a phone photo's paper (tone, grain,
  shadow, ruled lines, blue or black ink), and a thin-pen set of pens 2-6 px wide on 600-1200 px
  images (`digit_pictures.py`);
- pictures that are not one digit: printed words in the machine's fonts, scribbles, shapes (star,
  smiley, grid, triangle, spiral, hash, heart, arrow, house) and noise;
- the MNIST test set itself, each 28x28 image as a PNG file.

It reports accuracy by pen width, the share of non-digits flagged (`unsure`, or refused as holding
no ink), and the share of real digits flagged.
"""
import argparse
import io
import platform
import shlex
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
import digit_image  # noqa: E402
import runs  # noqa: E402
import use  # noqa: E402
from digit_pictures import PEN_SHARES, non_digit_set, pen_digit_set  # noqa: E402

# Seed 1 is the set the reading was tuned on (tests use it too). 2027 was held out until the stroke
# evening and the layout rules were settled; 2028 until the evidence bounds were (use.LEAST_EVIDENCE).
HELD_OUT_SEED = 2028
DEVICE = torch.device("cpu")


READ_TIMES = []  # seconds each read took, the file's decoding included


def read(model, image):
    """(digit read or None, unsure or refused, the 28x28 seen or None) for one PIL image, through a file."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG" if image.format != "JPEG" else "JPEG", quality=95)
    buffer.seek(0)
    started = time.perf_counter()
    try:
        reading = use.read_digit(model, buffer, DEVICE)
    except ValueError:  # no ink: refused, which for a non-digit is as good as unsure
        return None, True, None
    finally:
        READ_TIMES.append(time.perf_counter() - started)
    return int(reading.probabilities.argmax()), reading.unsure, reading.digit


def thin_pen_set(images, labels, count, seed):
    """Pens 2-6 px wide on 600-1200 px images, the digit 150-400 px high: a ballpoint on a phone photo."""
    rng = np.random.default_rng(seed + 1)
    pictures = []
    for part in range(count):
        pen, height = rng.uniform(2, 6), rng.uniform(150, 400)
        canvas = int(rng.integers(600, 1201))
        one = pen_digit_set(images, labels, 1, seed * 1000 + part, pen_share=pen / height, canvas_side=canvas)[0]
        pictures.append(one)
    return pictures


def digit_rows(model, pictures, key):
    """Per value of conditions[key]: (right, flagged, total); and the misread pictures."""
    tally, wrong = defaultdict(lambda: [0, 0, 0]), []
    for image, label, conditions in pictures:
        predicted, unsure, seen = read(model, image)
        row = tally[key(conditions)]
        row[0] += predicted == label
        row[1] += unsure
        row[2] += 1
        if predicted != label:
            wrong.append((image, f"true {label}, read {predicted}" + (" unsure" if unsure else ""), seen))
    return tally, wrong


def cpu_name():
    """The processor's model name where Linux says it, else what Python knows."""
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def percent(part, whole):
    return f"{100 * part / whole:.1f}%" if whole else "-"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-width", type=int, default=40, help="pen digits per pen width (default: 40)")
    parser.add_argument("--thin", type=int, default=100, help="thin-pen digits (default: 100)")
    parser.add_argument("--non-digits", type=int, default=200, help="non-digit pictures (default: 200)")
    parser.add_argument("--mnist", type=int, default=10000, help="MNIST test images (default: all 10,000)")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help=f"which random sets (default: {HELD_OUT_SEED})")
    parser.add_argument("--checkpoint", default="mnist_net.pt", help="weights (default: mnist_net.pt)")
    parser.add_argument("--data-dir", default="data", help="MNIST folder (default: data)")
    parser.add_argument("--figure", metavar="PNG", help="also draw the worst cases and what the model saw")
    parser.add_argument("--out", default="benchmarks/results/pens.md", help="the table's file")
    parser.add_argument("--work-side", type=int, default=digit_image.WORK_SIDE,
                        help=f"the longer side photos are read at (default: {digit_image.WORK_SIDE}, "
                             f"digit_image.WORK_SIDE); another compares speed and reads")
    args = parser.parse_args()

    commit = runs.git_commit()  # the code that reads, whatever is committed while it runs
    digit_image.WORK_SIDE = args.work_side
    data.prepare_mnist(args.data_dir)
    images, labels = data.load_mnist(args.data_dir, train=False)
    model = use.load_trained_model(args.checkpoint, DEVICE)

    lines = ["| pen width (share of the digit's height) | read right | flagged unsure |", "|---|---|---|"]
    worst = []
    for share in PEN_SHARES:
        pictures = pen_digit_set(images, labels, args.per_width, args.seed * 100 + round(share * 100),
                                 pen_share=share)
        tally, wrong = digit_rows(model, pictures, lambda c: c["photo"])
        right, flagged, total = (sum(row[i] for row in tally.values()) for i in range(3))
        lines.append(f"| {share:.0%} | {right}/{total} ({percent(right, total)}) | {percent(flagged, total)} |")
        worst += wrong
    pictures = thin_pen_set(images, labels, args.thin, args.seed)
    tally, wrong = digit_rows(model, pictures, lambda c: "thin")
    right, flagged, total = tally["thin"]
    lines.append(f"| **thin pens: 2-6 px on 600-1200 px images** | **{right}/{total} ({percent(right, total)})** "
                 f"| {percent(flagged, total)} |")
    worst = wrong + worst

    kinds = defaultdict(lambda: [0, 0])
    for image, kind in non_digit_set(args.non_digits, args.seed):
        predicted, unsure, seen = read(model, image)
        kinds[kind][0] += unsure
        kinds[kind][1] += 1
        if not unsure:
            worst.append((image, f"{kind}, read {predicted}", seen))
    flag_lines = ["| non-digits | flagged unsure (or no ink) |", "|---|---|"]
    flag_lines += [f"| {kind} | {flagged}/{total} |" for kind, (flagged, total) in kinds.items()]
    flagged = sum(f for f, _ in kinds.values())
    flag_lines.append(f"| **all** | **{flagged}/{args.non_digits} ({percent(flagged, args.non_digits)})** |")

    mnist_right = mnist_flagged = 0
    for image, label in zip(images[:args.mnist], labels[:args.mnist]):
        predicted, unsure, _ = read(model, Image.fromarray(image.numpy()))
        mnist_right += predicted == int(label)
        mnist_flagged += unsure
    mnist_line = (f"MNIST test images as PNG files, through the same path: {mnist_right}/{args.mnist} read right "
                  f"({percent(mnist_right, args.mnist)}), {mnist_flagged} flagged unsure "
                  f"({percent(mnist_flagged, args.mnist)}).")
    drawn = sorted(READ_TIMES[:-args.mnist] if args.mnist else READ_TIMES)

    command = shlex.join(["python", "benchmarks/pens.py", *sys.argv[1:]])
    report = "\n".join([f"`{command}` (commit {commit}, seed {args.seed}, weights {args.checkpoint})", "",
                        *lines, "", *flag_lines, "", mnist_line, "",
                        f"Reading a drawn picture (200-3000 px, decoding included), as `predict` does: median "
                        f"{1000 * drawn[len(drawn) // 2]:.0f} ms, slowest {1000 * drawn[-1]:.0f} ms "
                        f"({cpu_name()}, {torch.get_num_threads()} threads)."])
    data.write_atomically(args.out, (report + "\n").encode())
    if args.figure:
        draw_worst(worst[:12], args.figure)
    print(report + f"\n\nwrote {args.out}" + (f" and {args.figure}" if args.figure else ""))


def draw_worst(cases, path):
    """Each case's picture above the 28x28 image the model saw, with what was read."""
    import plots

    fig, axes = plots.plt.subplots(2, max(1, len(cases)), figsize=(2 * max(1, len(cases)), 4.2), squeeze=False)
    for i, (image, title, seen) in enumerate(cases):
        axes[0, i].imshow(image)
        axes[0, i].set_title(title, fontsize=7)
        if seen is not None:
            axes[1, i].imshow(seen, cmap="gray")
        for ax in axes[:, i]:
            ax.axis("off")
    fig.suptitle("Misread digits and unflagged non-digits (top) and the 28x28 image the model saw", fontsize=9)
    fig.tight_layout()
    plots.save_figure(fig, path)


if __name__ == "__main__":
    main()
