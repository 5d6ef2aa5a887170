"""How well `predict --number` reads written numbers made of real MNIST test digits.

    python benchmarks/read_numbers.py --count 1000 --figure numbers_heldout.png  # the held-out seed, once
    python benchmarks/read_numbers.py --seed 1                                      # a dev seed (1 and 3), to tune on

Numbers of MNIST test digits side by side (digit_pictures.number_set): each digit resized by up to
15% and moved up or down by up to a tenth of its height, the line sloping by up to 6 degrees, with
gaps of three kinds between the digits' boxes: separated (2-8 pixels at MNIST's scale), touching (0)
and overlapping (1-2 pixels); their ink seldom meets (benchmarks/pen_numbers.py places digits by their
ink). Each kind is read as 4-digit numbers (the targets) and as numbers of 2-8 digits; the
separated 4-digit ones also as phone photos (shadowed, ruled paper, blur, JPEG) and enlarged pixel by
pixel (blocky, as a small picture zoomed without smoothing). Every picture goes
through use.read_number from its PNG or JPEG bytes, decoding included, in fp32 with 2 threads, with the
shipped judges of spans or --judge's (number_judge.py --out).
Writes the table to benchmarks/results/read_numbers.md (--out), a figure of the misread numbers, each
with what was read, to --figure, and what was read of every number to --readings (two readers' files,
compared with diff, show whether a change reads any number differently).

A second table reads pictures that are not numbers (digit_pictures.non_digit_set: printed words,
scribbles, shapes and noise, on paper or in a photo) in number mode: a reader should refuse them or say
it is unsure of a digit, not read them as a number it is sure of. The first table counts the numbers
with a digit flagged unsure too, so a rule that flags more non-numbers shows what it costs the numbers.
"""
import argparse
import io
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import cli  # noqa: E402
import data  # noqa: E402
import number_image  # noqa: E402
import runs  # noqa: E402
import use  # noqa: E402
from digit_pictures import NON_DIGIT_KINDS, as_jpeg, non_digit_set, number_set  # noqa: E402

# Read once, 1,000 of each kind, with round 33's reader (2040: round 32's; 2039: round 25's, at 1,000;
# 2038: round 18's; 2036-2037: 300)
HELD_OUT_SEED = 2041
PHOTOS, BLOCKY = "phone photos", "enlarged pixel by pixel"  # the looks other than a smooth scan
KINDS = [("separated", (4, 4), None), ("touching", (4, 4), None), ("overlapping", (4, 4), None),
         ("separated", (4, 4), PHOTOS), ("separated", (2, 8), None), ("touching", (2, 8), None),
         ("overlapping", (2, 8), None), ("separated", (4, 4), BLOCKY)]


def picture_bytes(image, photo):
    """The file a user would give: a phone photo as JPEG, anything else as PNG."""
    if photo:
        return as_jpeg(image.convert("RGB"), quality=85).getvalue()
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def kind_numbers(images, labels, count, seed, k):
    """The first `count` numbers of KINDS[k] for `seed`, as (image, the number): the same for every reader."""
    kind, lengths, look = KINDS[k]
    return number_set(images, labels, count, seed * 100 + k, kind, lengths, photo=look == PHOTOS,
                      smooth=look != BLOCKY)


def kind_name(k):
    """KINDS[k] as the table names it: "separated, 2-8 digits", "separated, 4 digits, phone photos"."""
    kind, lengths, look = KINDS[k]
    return f"{kind}, {lengths[0]}{'' if lengths[0] == lengths[1] else f'-{lengths[1]}'} digits" + \
        (f", {look}" if look else "")


def read_all(model, judge, numbers, photo):
    """(what was read, seconds, the file's bytes, the digits read) for each (image, number); what was read
    is "error: ..." and the digits None where the reader refused the picture."""
    results = []
    for image, _ in numbers:
        raw = picture_bytes(image, photo)
        started = time.perf_counter()
        try:
            digits = use.read_number(model, io.BytesIO(raw), torch.device("cpu"), judge=judge)
            read = use.number_text(digits)
        except ValueError as error:
            digits, read = None, f"error: {error}"
        results.append((read, time.perf_counter() - started, raw, digits))
    return results


def row(name, numbers, results):
    digits = sum(len(truth) for _, truth in numbers)
    pairs = [(truth, read) for (_, truth), (read, *_) in zip(numbers, results)]
    right_digits = sum(sum(a == b for a, b in zip(read, truth)) for truth, read in pairs if len(read) == len(truth))
    whole = sum(read == truth for truth, read in pairs)
    wrong_count = sum(len(read) != len(truth) for truth, read in pairs)
    median_ms = 1000 * statistics.median(seconds for _, seconds, *_ in results)
    return (f"| {name} | {len(numbers)} | {right_digits}/{digits} ({100 * right_digits / digits:.1f}%) | "
            f"**{whole}/{len(numbers)}** ({100 * whole / len(numbers):.0f}%) | {wrong_count} | "
            f"{sum(map(has_an_unsure_digit, results))} | {median_ms:.0f} |")


def has_an_unsure_digit(result):
    _, _, _, digits = result
    return digits is not None and any(digit.reading.unsure for digit in digits)


def not_numbers_rows(model, judge, count, seed):
    """The second table's rows: of `count` pictures that are not numbers, by kind, how many the reader refused,
    read with a digit unsure, or read as a number sure of every digit (and which, the first few)."""
    by_kind = {kind: [] for kind in NON_DIGIT_KINDS}
    for image, kind in non_digit_set(count, seed):
        by_kind[kind].append(read_all(model, judge, [(image, None)], photo=image.format == "JPEG")[0])
    rows = []
    for kind, results in by_kind.items():
        refused = sum(digits is None for *_, digits in results)
        unsure = sum(map(has_an_unsure_digit, results))
        sure = [result[0] for result in results if result[3] is not None and not has_an_unsure_digit(result)]
        rows.append(f"| {kind} | {len(results)} | {refused} | {unsure} | **{len(sure)}** | {' '.join(sure[:8])} |")
    return rows


def draw_figure(failures, path, most=12):
    """The misread numbers: each as the reader saw it (boxes, 28x28s), with the truth and what was read."""
    panels = []
    for raw, truth, read, digits in failures[:most]:
        if digits is None:  # refused: the picture alone
            panel = Image.open(io.BytesIO(raw)).convert("RGB")
        else:
            seen = [(d.box, d.reading.digit, int(d.reading.probabilities.argmax())) for d in digits]
            panel = number_image.seen_picture(Image.open(io.BytesIO(raw)), seen, width=600, zoom=2)
        caption = Image.new("RGB", (max(panel.width, 300), panel.height + 18), "white")
        caption.paste(panel, (0, 18))
        ImageDraw.Draw(caption).text((4, 2), f"written {truth}, read {read}", fill=(0, 0, 0))
        panels.append(caption)
    if not panels:
        return
    figure = Image.new("RGB", (max(p.width for p in panels), sum(p.height + 6 for p in panels)), "white")
    top = 0
    for panel in panels:
        figure.paste(panel, (0, top))
        top += panel.height + 6
    figure.save(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED,
                        help=f"which numbers (default: {HELD_OUT_SEED}, held out; 1 and 3 are the dev sets)")
    parser.add_argument("--count", type=int, default=100, help="numbers of each kind (default: 100)")
    parser.add_argument("--checkpoint", default=str(use.SHIPPED_WEIGHTS), help="weights (default: the shipped)")
    parser.add_argument("--judge", help="the judges of spans, joined by commas (default: the shipped two; "
                                         "others from number_judge.py --out)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default="benchmarks/results/read_numbers.md")
    parser.add_argument("--figure", help="also draw the misread numbers here (PNG)")
    parser.add_argument("--readings", help="also write what was read of every number here, a line each (kind, "
                                           "written, read), to compare two readers number by number")
    parser.add_argument("--not-numbers", type=int, default=200,
                        help="pictures that are not numbers, read in number mode (default: 200; 0: none)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="try another value of one of number_image.py's bounds (on the dev seed)")
    args = parser.parse_args()
    try:
        cli.set_bounds(number_image, args.set)
    except cli.UsageError as error:
        parser.error(str(error))
    torch.set_num_threads(2)
    commit = runs.git_commit()
    data.prepare_mnist(args.data_dir)
    images, labels = (t.numpy() for t in data.load_mnist(args.data_dir, train=False))
    model = use.load_trained_model(args.checkpoint, torch.device("cpu"))
    judge = use.number_judge(torch.device("cpu"), args.judge)
    judge_names = ",".join(Path(path).name for path in (args.judge.split(",") if args.judge else use.JUDGES))
    rows, failures, readings = [], [], []
    for k, (_, _, look) in enumerate(KINDS):
        numbers = kind_numbers(images, labels, args.count, args.seed, k)
        results = read_all(model, judge, numbers, look == PHOTOS)
        name = kind_name(k)
        rows.append(row(name, numbers, results))
        print(rows[-1], flush=True)
        readings += [f"{name}\t{truth}\t{read}" for (_, truth), (read, *_) in zip(numbers, results)]
        failures += [(raw, truth, read, digits) for (_, truth), (read, _, raw, digits) in zip(numbers, results)
                     if read != truth]
    not_numbers = not_numbers_rows(model, judge, args.not_numbers, args.seed) if args.not_numbers else []
    command = shlex.join(["python", "benchmarks/read_numbers.py", *sys.argv[1:]])
    table = "\n".join([
        f"`{command}` (seed {args.seed}, {Path(args.checkpoint).name}, judge {judge_names}, commit {commit}, fp32, 2 threads, "
        f"{platform.machine()}, torch {torch.__version__})", "",
        "| numbers | count | digits right | numbers wholly right | read with a wrong digit count | "
        "with a digit unsure | median ms |",
        "|---|---|---|---|---|---|---|", *rows, "",
        *(["| not numbers | count | refused | a digit unsure | **read as a sure number** | the first read so |",
           "|---|---|---|---|---|---|", *not_numbers, ""] if not_numbers else [])])
    data.write_atomically(ROOT / args.out, table.encode())
    print(f"\n{table}\nWrote {args.out}")
    if args.readings:
        data.write_atomically(Path(args.readings), "\n".join([*readings, ""]).encode())
        print(f"Wrote {args.readings}")
    if args.figure:
        draw_figure(failures, args.figure)
        print(f"Wrote {args.figure} ({min(len(failures), 12)} of {len(failures)} misread numbers)")


if __name__ == "__main__":
    main()
