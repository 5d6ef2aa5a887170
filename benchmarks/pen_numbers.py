"""How well `predict --number` reads numbers written with a pen whose digits really touch or overlap.

    python benchmarks/pen_numbers.py      # seed 1; writes benchmarks/results/pen_numbers.md

benchmarks/read_numbers.py places MNIST's digits by their boxes: its "touching" digits' boxes meet, and
their ink seldom does. Here each four-digit number is drawn with a round pen (digit_pictures.pen_number:
the page's mouse strokes, each digit resized, leaning and moved a little, a ballpoint's varying
pressure) with its neighbours' ink a gap apart where they come closest: separated (a tenth to three
tenths of a digit's height), touching (the inks meet) and overlapping (one reaches a twentieth to a
tenth of the height into the other). Three pens: a ballpoint's, a felt tip's and a marker's strokes, 2%,
6% and 13% of a digit's 200-pixel height. Every picture goes through use.read_number from its PNG bytes,
in fp32 with 2 threads, with the shipped judges.

No reader was tuned on these numbers before this benchmark was written (seed 1, its first read, is in
benchmarks/RESEARCH.md). A round that tunes on seed 1 must judge itself on a seed it has not read.
"""
import argparse
import platform
import shlex
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
import runs  # noqa: E402
import use  # noqa: E402
from digit_pictures import INK_GAPS, pen_number  # noqa: E402
from read_numbers import read_all  # noqa: E402  (this folder is on the path as a script)

PENS = {"ballpoint": 4, "felt tip": 12, "marker": 26}  # stroke widths in pixels, on digits 200 pixels tall


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="which numbers (default: 1)")
    parser.add_argument("--count", type=int, default=50, help="numbers of each gap and pen (default: 50)")
    parser.add_argument("--out", default="benchmarks/results/pen_numbers.md")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = use.load_trained_model(use.SHIPPED_WEIGHTS, torch.device("cpu"))
    judge = use.number_judge(torch.device("cpu"))
    rows, misread, seconds = [], [], []
    for k, gap_kind in enumerate(INK_GAPS):
        cells = []
        for j, (pen_name, pen) in enumerate(PENS.items()):
            rng = np.random.default_rng(args.seed * 100 + 10 * k + j)
            right = 0
            for _ in range(args.count):
                number = "".join(str(d) for d in rng.integers(0, 10, size=4))
                ink = pen_number([int(c) for c in number], rng, gap_kind, pen)
                image = Image.fromarray(((1 - ink) * 255).astype(np.uint8))  # dark ink on white
                ((what, took, _, _),) = read_all(model, judge, [(image, number)], photo=False)
                right += what == number
                seconds.append(took)
                if what != number and len(misread) < 40:
                    misread.append(f"{gap_kind}, {pen_name}: {number} read {what}")
            cells.append(f"{right}/{args.count}")
        rows.append(f"| {gap_kind} | " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    command = shlex.join(["python", "benchmarks/pen_numbers.py", *sys.argv[1:]])
    table = "\n".join([
        f"`{command}` (seed {args.seed}, commit {runs.git_commit()}, fp32, 2 threads, {platform.machine()}, "
        f"torch {torch.__version__})", "",
        "Four-digit numbers wholly right:", "",
        "| gap between the digits' ink | " + " | ".join(f"{name} ({pen} px)" for name, pen in PENS.items()) + " |",
        "|---|" + "---|" * len(PENS), *rows, "",
        f"Median read {1000 * statistics.median(seconds):.0f} ms. The first misread numbers:", "",
        *(f"- {line}" for line in misread[:15]), ""])
    data.write_atomically(ROOT / args.out, table.encode())
    print(f"\n{table}\nWrote {args.out}")


if __name__ == "__main__":
    main()
