"""Where digit_image.py's bounds come from: MNIST's training digits read as images, through the reader.

    python benchmarks/stroke_widths.py              # every 20th training digit; writes benchmarks/results/stroke_widths.md

For each digit (its 28x28 image as a PNG file, read by digit_image as `predict` reads it): the stroke
width in pixels of the 20 px box (STROKE_WIDTHS, TYPICAL_WIDTH), and each measure that `unsure` bounds
(MOST_STRAY_INK, WIDEST, MOST_LOOPS, INK_SHARE, LONGEST). It reports their percentiles and the share
of the digits beyond each bound.
"""
import argparse
import io
import shlex
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
import digit_image as di  # noqa: E402
import runs  # noqa: E402


def measures(image):
    """The reader's measures of one 28x28 uint8 digit, read as an image file would be."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    buffer.seek(0)
    crop, stray = di.crop_to_digit(di.ink_map(di.working_copy(Image.open(buffer))))
    drawn = di.stroke_mask(crop)
    strokes = di.even_strokes(drawn)
    digit = di.fit_in_field(strokes)
    return {"stroke width (box px)": di.stroke_width(drawn)[0] / di.STROKE_GRID,
            "stray ink share": stray,
            "width over height": crop.shape[1] / crop.shape[0],
            "loops": max(di.loop_count(drawn), di.loop_count(strokes)),
            "ink share of the field": digit.mean() / 255,
            "stroke length (box heights)": di.stroke_width(strokes)[1].sum() / max(strokes.shape)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=int, default=20, help="read every Nth training digit (default: 20)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default="benchmarks/results/stroke_widths.md")
    args = parser.parse_args()
    data.prepare_mnist(args.data_dir)
    images, _ = data.load_mnist(args.data_dir, train=True)
    rows = [measures(image.numpy()) for image in images[::args.every]]
    bounds = {"stray ink share": (None, di.MOST_STRAY_INK), "width over height": (None, di.WIDEST),
              "loops": (None, di.MOST_LOOPS + 1), "ink share of the field": di.INK_SHARE,
              "stroke length (box heights)": (None, di.LONGEST)}
    lines = ["| measure | 0.5% | 10% | 50% | 90% | 99.5% | beyond the bound |", "|---|---|---|---|---|---|---|"]
    for name in rows[0]:
        values = np.array([row[name] for row in rows])
        low, high = bounds.get(name, (None, None))
        beyond = ((values < low) if low is not None else 0) | ((values >= high) if high is not None else 0)
        share = f"{100 * np.mean(beyond):.2f}%" if name in bounds else "-"
        lines.append(f"| {name} | " + " | ".join(f"{np.percentile(values, q):.3f}" for q in (0.5, 10, 50, 90, 99.5))
                     + f" | {share} |")
    command = shlex.join(["python", "benchmarks/stroke_widths.py", *sys.argv[1:]])
    report = "\n".join([f"`{command}` (commit {runs.git_commit()}, {len(rows):,} MNIST training digits)", "",
                        *lines])
    data.write_atomically(args.out, (report + "\n").encode())
    print(report + f"\n\nwrote {args.out}")


if __name__ == "__main__":
    main()
