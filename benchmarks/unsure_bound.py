"""Where use.LEAST_EVIDENCE and digit_image.WIDEST come from: what the models say of digits they never
saw, and of non-digits.

    python benchmarks/unsure_bound.py benchmarks/results/precision_runs/*/model.pt
        # writes benchmarks/results/unsure_bound.md

A model's evidence for a picture is the log of the sum of the exponentials of its ten logits (the
negative "energy" of Liu et al., 2020, "Energy-based out-of-distribution detection"). The softmax
sees only how the logits differ, so a scribble can read 2 at 99%; the evidence also sees how large
they are, and strokes unlike anything learned leave it low. Some digits are read with less evidence
than others (a 1 has little ink), so each digit gets its own bound: the given percentile of the
evidence of validation digits the models read as that digit.

The models must be trained with `--val 10000` (such as the ten that `benchmarks/precision.py` leaves in
benchmarks/results/precision_runs), so the validation digits are ones they never saw, as a user's
digits are. Read through the reader as `predict` reads them:
- every Nth validation digit, its 28x28 image as a PNG file. The bounds are set on every other one of
  these (pooled over the models) and the shares measured on the rest;
- the dev set of non-digits (seed 1 of digit_pictures.py; the held-out seed is never read here).

Each row is a pair of bounds: the picture's width over height (digit_image.WIDEST: wide MNIST 5s and
2s come near 1.5) and the evidence percentile. A picture counts as flagged when anything flags it:
the layout, a best guess under use.UNSURE_BELOW, or evidence under its digit's bound. The share is
the mean over the models and the worst model's. Round 2's bar, set before its table was made: the
most dev non-digits flagged (mean) of the rows where no model flags over 1.5% of the validation digits
(the issue allows 2% on the test set).
"""
import argparse
import io
import shlex
import sys
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
from digit_pictures import non_digit_set  # noqa: E402

CPU = torch.device("cpu")
DEV_SEED = 1
WIDTH_BOUNDS = (1.5, 1.9)
PERCENTILES = (0, 0.25, 0.5, 0.75, 1.0)  # 0: no evidence bound


def pictures_read(images):
    """(the 28x28 digits seen, the width over height measured, whether another layout rule doubted it)
    for PIL images. Pictures with no ink count as doubted (the reader refuses them)."""
    measured = []
    layout_doubt = digit_image.layout_doubt

    def recording_layout_doubt(width_over_height, *rest):  # the same rules, the width's set aside
        measured.append(width_over_height)
        return layout_doubt(0, *rest)

    digit_image.layout_doubt = recording_layout_doubt
    seen, widths, doubted = [], [], []
    try:
        for image in images:
            buffer = io.BytesIO()
            image.save(buffer, "PNG")
            buffer.seek(0)
            measured.clear()
            try:
                picture = digit_image.read_picture(buffer)
            except ValueError:
                picture = digit_image.Picture(np.zeros((28, 28), np.uint8), "no ink")
            seen.append(picture.digit)
            widths.append(measured[0] if measured else 0)
            doubted.append(bool(picture.doubt))
    finally:
        digit_image.layout_doubt = layout_doubt
    return torch.from_numpy(np.stack(seen)), np.array(widths), np.array(doubted)


def scores(model, seen):
    """(the digit read, its evidence, whether the best guess is under UNSURE_BELOW) for each picture."""
    logits = use.predict_batches(model, seen, CPU, logits=True)
    return (logits.argmax(1).numpy(), torch.logsumexp(logits, 1).numpy(),
            (logits.softmax(1).max(1).values < use.UNSURE_BELOW).numpy())


def digit_bounds(read, evidence, percentile):
    """Each digit's evidence bound: the percentile of the evidence of the pictures read as it."""
    if percentile == 0:
        return np.full(10, -np.inf)
    return np.array([np.percentile(evidence[read == d], percentile) for d in range(10)])


def flagged(pictures, model_scores, widest, bounds):
    (_, widths, doubted), (read, evidence, weak_guess) = pictures, model_scores
    return np.mean(doubted | (widths >= widest) | weak_guess | (evidence < bounds[read]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="models trained with --val 10000")
    parser.add_argument("--every", type=int, default=2, help="read every Nth validation digit (default: 2)")
    parser.add_argument("--non-digits", type=int, default=400, help="dev non-digits (default: 400)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default="benchmarks/results/unsure_bound.md")
    args = parser.parse_args()
    commit = runs.git_commit()  # the code that reads, whatever is committed while it runs
    data.prepare_mnist(args.data_dir)
    images, labels = data.load_mnist(args.data_dir, train=True)
    _, (val_images, _) = data.split_validation(images, labels, 10000)
    digits = pictures_read(Image.fromarray(image.numpy()) for image in val_images[::args.every])
    setting, measuring = (tuple(part[start::2] for part in digits) for start in (0, 1))
    non_digits = pictures_read(image for image, _ in non_digit_set(args.non_digits, DEV_SEED))

    models = [use.load_trained_model(path, CPU) for path in args.checkpoints]
    setting_scores = [scores(model, setting[0]) for model in models]
    read, evidence = (np.concatenate([s[i] for s in setting_scores]) for i in (0, 1))
    measuring_scores = [scores(model, measuring[0]) for model in models]
    non_digit_scores = [scores(model, non_digits[0]) for model in models]

    lines = ["| widest | evidence percentile | each digit's bound, 0-9 | validation digits flagged: mean | "
             "worst model | dev non-digits flagged: mean | worst model |", "|---|---|---|---|---|---|---|"]
    for widest in WIDTH_BOUNDS:
        for percentile in PERCENTILES:
            bounds = digit_bounds(read, evidence, percentile)
            on_digits = [flagged(measuring, s, widest, bounds) for s in measuring_scores]
            on_non_digits = [flagged(non_digits, s, widest, bounds) for s in non_digit_scores]
            shown = " ".join(f"{b:.2f}" for b in bounds) if percentile else "-"
            lines.append(f"| {widest} | {percentile}% | {shown} | {100 * np.mean(on_digits):.2f}% | "
                         f"{100 * np.max(on_digits):.2f}% | {100 * np.mean(on_non_digits):.1f}% | "
                         f"{100 * np.min(on_non_digits):.1f}% |")
    command = shlex.join(["python", "benchmarks/unsure_bound.py", *sys.argv[1:]])
    report = "\n".join([f"`{command}` (commit {commit})", "",
                        f"{len(models)} models; {len(digits[0])} validation digits (one in {args.every} of "
                        f"--val 10000), the bounds set on {len(setting[0])} and the shares measured on "
                        f"{len(measuring[0])}; {args.non_digits} non-digits of seed {DEV_SEED}.", "", *lines])
    data.write_atomically(args.out, (report + "\n").encode())
    print(report + f"\n\nwrote {args.out}")


if __name__ == "__main__":
    main()
