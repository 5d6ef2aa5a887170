"""Mutation testing, by hand: plausible one-line bugs, each put into a copy of the tree, and whether a
test catches it.

    python benchmarks/mutants.py                 # every mutant; writes benchmarks/results/mutants.md
    python benchmarks/mutants.py --only 3 7      # some of them (numbered from 1)

Each mutant is a bug someone could write: a step that forgets the weight average, evaluation left in
training mode, degrees taken as radians, a server that drops the page's ink hint. For each, the fast
tier runs first (`pytest -x -m "not slow"`); a mutant it misses meets the slow tests as well, but for
the two mouse-drawn benchmarks (two minutes). A mutant that no test catches is a gap in the suite.
A mutation tool (mutmut) would make thousands of blind mutants; at a minute a run of the fast tier,
these few, aimed at the bugs that would matter, are what fits.
"""
import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
import runs  # noqa: E402

# (what the bug is, file, the line as it is, the line with the bug)
MUTANTS = [
    ("the weight average never follows the weights", "mnist_99_4.py",
     "        average.update()", "        pass"),
    ("the learning rate is never scheduled", "mnist_99_4.py", "    scheduler.step()", "    pass"),
    ("the schedule is one step short of a full run", "mnist_99_4.py",
     "steps_per_epoch = math.ceil(len(train_set[0]) / args.batch_size)",
     "steps_per_epoch = len(train_set[0]) // args.batch_size"),
    ("dropout is declared but skipped", "model.py",
     "x = self.gap(self.dropout(self.features(x)))", "x = self.gap(self.features(x))"),
    ("evaluation runs in training mode", "use.py", "    model.eval()\n", "    model.train()\n"),
    ("the confusion matrix is transposed", "use.py",
     "confusion.index_put_((labels, predicted),", "confusion.index_put_((predicted, labels),"),
    ("rotation degrees are taken as radians", "data.py",
     "angle = uniform(-rotate, rotate) * (math.pi / 180)", "angle = uniform(-rotate, rotate)"),
    ("shifts in pixels are taken as a fraction of the image", "data.py",
     "uniform(-translate, translate) * (2 / 28)", "uniform(-translate, translate) * 2"),
    ("the distillation loss loses its T^2", "distill.py",
     "return weight * temperature ** 2 * F.kl_div", "return weight * F.kl_div"),
    ("the distillation loss runs the wrong way", "distill.py",
     "F.kl_div(soft, soft_teacher,", "F.kl_div(soft_teacher, soft,"),
    ("the ONNX output is named otherwise", "use.py", 'output_names=["log_probs"]', 'output_names=["output"]'),
    ("a photo's EXIF rotation is ignored", "digit_image.py",
     "            ImageOps.exif_transpose(image, in_place=True)", "            pass"),
    ("strokes are never evened (a ballpoint stays thin)", "digit_image.py",
     "    width, ridge = stroke_width(mask)\n", "    return mask\n"),
    ("the page's ink hint is dropped", "server.py",
     'ink, number = query.get("ink", [None])[0], query.get("number", ["0"])[0]',
     'ink, number = None, query.get("number", ["0"])[0]'),
    ("the evidence bound is never applied", "use.py",
     "if torch.logsumexp(logits, 0) < LEAST_EVIDENCE[int(logits.argmax())]:", "if False:"),
    ("marks beside the digit are not doubted", "digit_image.py",
     "    if stray >= MOST_STRAY_INK:", "    if False:"),
    ("a damaged model's recorded SHA-256 is not checked", "use.py",
     "if recorded and runs.file_sha256(path) != recorded:", "if False:"),
    ("non-finite weights are loaded", "use.py",
     "if not all(torch.isfinite(value).all() for value in state.values() if value.is_floating_point()):",
     "if False:"),
    ("a file is written in place, not whole or not at all", "data.py",
     "        os.replace(tmp, path)", "        os.replace(tmp, path)\n        path.write_bytes(data[:len(data) // 2])"),
    ("MNIST's MD5 sums are not checked", "data.py", "file_md5(path) != md5", "False"),
    ("a resumed run logs an epoch twice", "mnist_99_4.py", "        log.forget_epochs_from(start_epoch)", "        pass"),
    ("the server has no request deadline", "server.py", "        deadline.start()", "        pass"),
    ("the server reads any number of images at once", "server.py",
     "if not self.server.readers.acquire(timeout=BUSY_WAIT_S):", "if False:"),
    ("the run lock is not taken", "runs.py",
     "    claim_folder(path)  # first", "    pass  # first"),
    ("the curves draw the training loss as the evaluation's", "plots.py",
     'loss_ax.plot(epochs, [row[f"{eval_name}_loss"] for row in history]',
     'loss_ax.plot(epochs, [row["train_loss"] for row in history]'),
    ("the confusion figure writes its counts transposed", "plots.py",
     "ax.text(predicted, true, str(count)", "ax.text(true, predicted, str(count)"),
    ("a number's cuts keep the spans least likely to be digits", "number_image.py",
     "best[a][0] + score > best[b][0]", "best[a][0] + score < best[b][0]"),
    ("the judge's verdict is read off the wrong class", "use.py",
     "judged[:, number_image.NOT_ONE_DIGIT]", "judged[:, 0]"),
    ("a mark is only offered whole", "number_image.py",
     "((a, b) == (0, width) or NARROWEST * unit <= b - a <= WIDEST_PART * unit and tall_enough(a, b))]",
     "((a, b) == (0, width))]"),
    ("a number's faint stretches are dropped", "digit_image.py",
     "    if faint:\n", "    if False:\n"),
    ("the judge learns pieces of a digit as the digit", "number_judge.py",
     "            elif share < NOT_ONE[0]", "            elif share < 0"),
    ("a mark wider than the widest span is not offered whole", "number_image.py",
     "((a, b) == (0, width) or NARROWEST * unit <= b - a <= WIDEST_PART * unit and tall_enough(a, b))]",
     "(NARROWEST * unit <= b - a <= WIDEST_PART * unit and tall_enough(a, b))]"),
    ("a span as short as a 1's flag is offered as a digit", "number_image.py",
     "        return ink_height(strokes[:, a:b]) >= shortest",
     "        return True or ink_height(strokes[:, a:b]) >= shortest"),
    ("the model's doubt is left out of a span's score", "use.py",
     "    scores = one_digit + sure", "    scores = one_digit"),
    ("a digit finer than the rest keeps only the strokes at the number's level", "number_image.py",
     "        grown.append(mark_of(mark.mask | (reach & (ink > own_level))))", "        grown.append(mark)"),
    ("a digit wholly paler than the rest is lost", "number_image.py",
     "    for mark in faint_marks(ink, smooth, pieces, owner, line_height(marks)):", "    for mark in []:"),
    ("faint ink in a piece of several marks joins the first of them, not the nearest", "number_image.py",
     "    taker = np.where(sole_mark > 0, sole_mark, nearest)",
     "    taker = np.where(sole_mark > 0, sole_mark, holds.argmax(axis=1)[pieces])"),
    ("flecks outside the line's rows are kept", "number_image.py",
     "    pieces = in_line(pieces)", "    pieces = pieces"),
    ("the line has no margin above and below", "number_image.py",
     "    top = min(piece.box[1] for piece in tall) - LINE_MARGIN * tallest",
     "    top = min(piece.box[1] for piece in tall)"),
    ("a decimal point is dropped as a speck or joined to a digit", "number_image.py",
     "    marks, points = without_points(marks, ink, strongest)\n", "    points = []\n"),
    ("a dot among a digit's pieces in a gap is taken for a point", "number_image.py",
     "                    and alone_between(mark, marks, before[-1], after[0]))", "                    )"),
    ("a span the model's doubt could put on the likeliest cuts is not read by it", "number_image.py",
     "LEAST_SURE = SURE_WEIGHT * (np.log(0.1) - 1e-3)", "LEAST_SURE = 0.0"),
    ("a span that leads to no cut across the mark is still offered", "number_image.py",
     "    return [(a, b) for a, b in spans if a in ahead and b in behind]",
     "    return [(a, b) for a, b in spans if a in ahead]"),
    ("a number's digit is read by the model alone, the judges' reading of it left out", "number_image.py",
     "JUDGES_SHARE = 0.3", "JUDGES_SHARE = 0.0"),
    ("a missing file is called a damaged image", "digit_image.py",
     "        if error.errno is not None:", "        if False:"),
    ("a file cut short ends in Pillow's words alone", "digit_image.py",
     '        raise ValueError(f"a damaged or cut-short image file ({error})") from None', "        raise"),
]
SLOW_BENCHMARKS = "not mouse_drawn_digits_large and not mouse_drawn_eights"
# The test that each mutant's line is still in the code fails in every mutant's copy (its line is
# changed there), so it would catch every mutant and say nothing of the others: it is left out.
LINES_STILL_THERE = "tests/test_evidence.py::test_every_mutant_names_a_line_that_is_once_in_its_file"


def caught_by(tree, tier):
    """(True if a test failed, seconds) for one tier of the suite in `tree`."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                             "--deselect", LINES_STILL_THERE, *tier],
                            cwd=tree, capture_output=True, text=True)
    failed = [line[len("FAILED "):].split(" - ")[0] for line in result.stdout.splitlines()
              if line.startswith("FAILED")]
    return result.returncode != 0, time.perf_counter() - started, failed[0] if failed else result.stdout[-200:]


def copy_of_tree(scratch):
    """The tracked files of the repository (and its MNIST folder, linked) in a scratch folder."""
    tree = Path(scratch) / "tree"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in files.splitlines():
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target)
    (tree / "data").symlink_to(ROOT / "data")
    return tree


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", type=int, nargs="+", help="the mutants' numbers (1-based; default: all)")
    parser.add_argument("--out", default="benchmarks/results/mutants.md")
    args = parser.parse_args()
    commit = runs.git_commit()
    chosen = args.only or range(1, len(MUTANTS) + 1)
    lines = ["| # | bug | file | caught by | after |", "|---|---|---|---|---|"]
    gaps = 0
    with tempfile.TemporaryDirectory() as scratch:
        tree = copy_of_tree(scratch)
        for number in chosen:
            bug, name, original, mutated = MUTANTS[number - 1]
            source = (tree / name).read_text()
            if source.count(original) != 1:
                raise SystemExit(f"mutant {number}: {original!r} is not once in {name}; update the mutant")
            (tree / name).write_text(source.replace(original, mutated))
            try:
                caught, seconds, test = caught_by(tree, ["-m", "not slow"])
                if not caught:
                    caught, more, test = caught_by(tree, ["-m", "slow", "-k", SLOW_BENCHMARKS])
                    seconds += more
            finally:
                (tree / name).write_text(source)
            gaps += not caught
            where = f"`{test}`" if caught else "**nothing: a gap**"
            lines.append(f"| {number} | {bug} | `{name}` | {where} | {seconds:.0f} s |")
            print(lines[-1], flush=True)
    command = shlex.join(["python", "benchmarks/mutants.py", *sys.argv[1:]])
    report = "\n".join([f"`{command}` (commit {commit})", "", *lines, "",
                        f"{len(chosen) - gaps} of {len(chosen)} mutants caught."])
    data.write_atomically(args.out, (report + "\n").encode())
    print(f"\n{len(chosen) - gaps} of {len(chosen)} caught; wrote {args.out}")


if __name__ == "__main__":
    main()
