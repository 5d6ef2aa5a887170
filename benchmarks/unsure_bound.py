"""Where use.LEAST_EVIDENCE comes from: the model's evidence on digits it never saw, and on non-digits.

    python benchmarks/unsure_bound.py benchmarks/results/precision_runs/*/model.pt
        # writes benchmarks/results/unsure_bound.md

A model's evidence for a picture is the log of the sum of the exponentials of its ten logits (the
negative "energy" of Liu et al., 2020, "Energy-based out-of-distribution detection"). The softmax
sees only how the logits differ, so a triangle can read 0 at 99%; the evidence also sees how large
they are, and strokes unlike anything learned leave it low.

The models must be trained with `--val 10000` (such as the ten that `benchmarks/precision.py` leaves in
benchmarks/results/precision_runs), so the validation digits are ones they never saw, as a user's
digits are. Read through the reader as `predict` reads them:
- every Nth validation digit, its 28x28 image as a PNG file;
- the dev set of non-digits (seed 1 of tests/digit_pictures.py; the held-out seed is never read here).

For each candidate bound: the share of each set flagged in all (the picture's layout, a best guess
under use.UNSURE_BELOW, or evidence under the bound), the mean over the models and the worst model.
The bar, set before the table was first made: the chosen bound is the highest at which no model
flags more than 1.5% of the validation digits in all (the issue allows 2% on the test set).
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
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
import data  # noqa: E402
import digit_image  # noqa: E402
import runs  # noqa: E402
import use  # noqa: E402
from digit_pictures import non_digit_set  # noqa: E402

CPU = torch.device("cpu")
DEV_SEED = 1
CANDIDATES = (3.5, 4.0, 4.5, 5.0, 5.5, 6.0)


def pictures_read(images):
    """(the 28x28 digits seen, whether the layout alone was doubted) for PIL images; pictures with no
    ink count as flagged by the layout (the reader refuses them)."""
    seen, doubted = [], []
    for image in images:
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        buffer.seek(0)
        try:
            picture = digit_image.read_picture(buffer)
        except ValueError:
            seen.append(np.zeros((28, 28), np.uint8))
            doubted.append(True)
            continue
        seen.append(picture.digit)
        doubted.append(bool(picture.doubt))
    return torch.from_numpy(np.stack(seen)), np.array(doubted)


def flagged_shares(model, seen, doubted):
    """For each candidate bound, the share of the pictures flagged in all by `model`."""
    logits = use.predict_batches(model, seen, CPU, logits=True)
    weak_guess = (logits.softmax(1).max(1).values < use.UNSURE_BELOW).numpy()
    evidence = torch.logsumexp(logits, 1).numpy()
    return [np.mean(doubted | weak_guess | (evidence < bound)) for bound in CANDIDATES]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="models trained with --val 10000")
    parser.add_argument("--every", type=int, default=2, help="read every Nth validation digit (default: 2)")
    parser.add_argument("--non-digits", type=int, default=400, help="dev non-digits (default: 400)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default="benchmarks/results/unsure_bound.md")
    args = parser.parse_args()
    data.prepare_mnist(args.data_dir)
    images, labels = data.load_mnist(args.data_dir, train=True)
    _, (val_images, _) = data.split_validation(images, labels, 10000)
    digits = pictures_read(Image.fromarray(image.numpy()) for image in val_images[::args.every])
    non_digits = pictures_read(image for image, _ in non_digit_set(args.non_digits, DEV_SEED))

    digit_shares, non_digit_shares = [], []
    for path in args.checkpoints:
        model = use.load_trained_model(path, CPU)
        digit_shares.append(flagged_shares(model, *digits))
        non_digit_shares.append(flagged_shares(model, *non_digits))
    digit_shares, non_digit_shares = np.array(digit_shares), np.array(non_digit_shares)

    lines = ["| evidence bound | validation digits flagged: mean | worst model | dev non-digits flagged: mean "
             "| worst model |", "|---|---|---|---|---|"]
    for i, bound in enumerate(CANDIDATES):
        lines.append(f"| {bound} | {100 * digit_shares[:, i].mean():.2f}% | {100 * digit_shares[:, i].max():.2f}% "
                     f"| {100 * non_digit_shares[:, i].mean():.1f}% | {100 * non_digit_shares[:, i].min():.1f}% |")
    command = shlex.join(["python", "benchmarks/unsure_bound.py", *sys.argv[1:]])
    report = "\n".join([f"`{command}` (commit {runs.git_commit()})", "",
                        f"{len(args.checkpoints)} models; {len(digits[0])} validation digits (one in "
                        f"{args.every} of --val 10000); {args.non_digits} non-digits of seed {DEV_SEED}.", "",
                        *lines])
    data.write_atomically(args.out, (report + "\n").encode())
    print(report + f"\n\nwrote {args.out}")


if __name__ == "__main__":
    main()
