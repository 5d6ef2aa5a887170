"""Train a judge for the number reader: a Net that tells whether a span of a written number is one whole digit.

    python number_judge.py                                            # number_judge.pt and its .sha256
    python number_judge.py --every-pair --out number_judge_pairs.pt  # the judge that votes beside it

Each takes about 7 minutes on 2 cores.

The digit model is sure of what it reads even when a span is half a digit (a 0's halves are two 1s) or
two digits squeezed together (a 4 and a 1 are a 4), so it cannot choose where touching digits meet.
The judge is the same small Net with an eleventh class, "not one digit", trained on the spans the reader
itself considers (number_image.possible_parts, and the short ones and those on no path across the mark
that it leaves out) in numbers of MNIST *training* digits, written separated, touching and overlapping,
enlarged smoothly or pixel by pixel (digit_pictures.number_ink): a span holding most of one digit's ink
and little of any other's is that digit; one holding little of any digit, or much of two, is not one
digit; the spans in between are left out. The test digits, which the benchmark's numbers are made of,
are never used.

The reader asks two judges and takes the mean of their probabilities (use.Vote). The second is taught
--every-pair: every span that holds TWO_DIGITS of each of two digits, which the first sees only in the
sample of spans that are not one digit. It cuts a 1 from the digit it overlaps where the first keeps the
two whole, and the first keeps a 7 whole where the second would cut it (benchmarks/RESEARCH.md, rounds
23-25).
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import cli
import data
import number_image
import runs
from digit_pictures import number_ink
from model import Net

ONE_DIGIT = (0.85, 0.15)  # a span with at least this share of one digit's ink, and other ink up to this share of it
NOT_ONE = (0.6, 0.35)     # a span with less than this share of any digit's ink, or more other ink than this
TWO_DIGITS = 0.5          # --every-pair: a span with this share of each of two digits' ink (a 4 and the 1 it
                          # overlaps) is never one digit, and every such span is taught
GAP_KINDS = ("separated", "touching", "overlapping")
BLOCKY_SHARE = 0.5        # of the numbers, enlarged pixel by pixel (a small picture zoomed), not smoothly


def labelled_spans(digits, labels, rng, gap_kind, smooth=True, every_pair=False):
    """The spans the reader would consider in one number of these digits, enlarged smoothly or pixel by
    pixel: (pictures, classes, pairs), each class a digit or NOT_ONE_DIGIT. With `every_pair`, a span that
    holds TWO_DIGITS of each of two digits is a pair, and not one digit."""
    ink, each_digit = number_ink(digits, rng, gap_kind, each_digit=True, smooth=smooth)
    ink_map, marks, strongest, scale, _ = number_image.marks_of(Image.fromarray(((1 - ink) * 255).astype(np.uint8)))
    ink_per_column = np.stack([(layer > 0.3).sum(axis=0) for layer in each_digit]).astype(float)
    ink_of_digit = ink_per_column.sum(axis=1)
    pictures, classes, pairs = [], [], []
    for mark in marks:
        # every span, short ones (as pieces) and those on no path across the mark too
        parts = number_image.possible_parts(ink_map, strongest, mark, shortest=0, every_span=True)
        for (a, b), picture in zip(parts.spans, parts.pictures):
            first = int((mark.box[0] + a / parts.scale) * scale)
            last = int(np.ceil((mark.box[0] + b / parts.scale) * scale))
            inside = ink_per_column[:, first:last].sum(axis=1)
            main = int(np.argmax(inside / ink_of_digit))  # the digit most of whose ink is inside
            share = inside[main] / ink_of_digit[main]
            others = (inside.sum() - inside[main]) / max(inside[main], 1)  # other digits' ink, to this one's
            pair = every_pair and len(digits) > 1 and np.sort(inside / ink_of_digit)[-2] >= TWO_DIGITS
            if pair:
                classes.append(number_image.NOT_ONE_DIGIT)
            elif share >= ONE_DIGIT[0] and others <= ONE_DIGIT[1]:
                classes.append(int(labels[main]))
            elif share < NOT_ONE[0] or others > NOT_ONE[1]:
                classes.append(number_image.NOT_ONE_DIGIT)
            else:
                continue  # neither clearly one digit nor clearly not
            pictures.append(picture)
            pairs.append(pair)
    return pictures, classes, pairs


def training_spans(images, labels, count, rng, every_pair=False):
    """The labelled spans of `count` numbers of 2-5 digits, a third of each gap kind, BLOCKY_SHARE of them
    enlarged pixel by pixel; as many spans that are not one digit as three times those that are, and with
    `every_pair` every pair of two digits besides."""
    pictures, classes, pairs = [], [], []
    for i in range(count):
        picks = rng.choice(len(images), size=int(rng.integers(2, 6)), replace=False)
        try:
            spans, span_classes, span_pairs = labelled_spans(images[picks], labels[picks], rng, GAP_KINDS[i % 3],
                                                             smooth=i % 10 >= 10 * BLOCKY_SHARE,
                                                             every_pair=every_pair)
        except ValueError:  # a number too faint to find
            continue
        pictures += spans
        classes += span_classes
        pairs += span_pairs
    pictures, classes, pairs = np.stack(pictures), np.array(classes), np.array(pairs, dtype=bool)
    one = np.flatnonzero(classes != number_image.NOT_ONE_DIGIT)
    not_one = np.flatnonzero((classes == number_image.NOT_ONE_DIGIT) & ~pairs)
    sample = rng.choice(not_one, min(len(not_one), 3 * len(one)), replace=False)
    keep = rng.permutation(np.concatenate([one, np.flatnonzero(pairs), sample]))
    return torch.from_numpy(pictures[keep]), torch.from_numpy(classes[keep]).long()


def train(pictures, classes, epochs, seed, width=8, batch=256, lr=3e-3):
    """A Net of eleven classes trained on the spans (AdamW, one-cycle learning rate, fp32)."""
    torch.manual_seed(seed)
    judge = Net(width=width, classes=number_image.NOT_ONE_DIGIT + 1)
    optimizer = torch.optim.AdamW(judge.parameters(), lr=lr, weight_decay=1e-4)
    steps = len(pictures) // batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs * steps)
    for epoch in range(epochs):
        judge.train()
        order = torch.randperm(len(pictures))
        for step in range(steps):
            chosen = order[step * batch:(step + 1) * batch]
            loss = F.nll_loss(judge(data.normalize(pictures[chosen]).unsqueeze(1)), classes[chosen])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        print(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}", flush=True)
    return judge.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, default=4000, help="numbers to take spans from (default: 4000)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=8, help="the judge's Net's width (default: 8, the digit model's)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default="number_judge.pt")
    parser.add_argument("--every-pair", action="store_true",
                        help="teach every span of two digits, as not one digit (number_judge_pairs.pt)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="another value of one of the bounds above, e.g. --set ONE_DIGIT=0.9,0.1 (to try)")
    args = parser.parse_args()
    try:
        cli.set_bounds(sys.modules[__name__], args.set)
    except cli.UsageError as error:
        parser.error(str(error))
    torch.set_num_threads(2)
    started = time.perf_counter()
    data.prepare_mnist(args.data_dir)
    images, labels = (t.numpy() for t in data.load_mnist(args.data_dir, train=True))
    pictures, classes = training_spans(images, labels, args.numbers, np.random.default_rng(args.seed),
                                       args.every_pair)
    held = len(pictures) // 50  # a fiftieth held back, to say how well the judge learned
    print(f"{len(pictures)} spans, {int((classes != number_image.NOT_ONE_DIGIT).sum())} of them one digit", flush=True)
    judge = train(pictures[held:], classes[held:], args.epochs, args.seed, args.width)
    with torch.no_grad():
        said = judge(data.normalize(pictures[:held]).unsqueeze(1)).argmax(1)
    one_or_not = (said == number_image.NOT_ONE_DIGIT) == (classes[:held] == number_image.NOT_ONE_DIGIT)
    print(f"held-back spans: one digit or not right {100 * one_or_not.float().mean():.1f}%, "
          f"the class right {100 * (said == classes[:held]).float().mean():.1f}%")
    torch.save(judge.state_dict(), args.out)
    with open(args.out + ".sha256", "w") as checksum:
        checksum.write(f"{runs.file_sha256(args.out)}  {Path(args.out).name}\n")
    print(f"Wrote {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
