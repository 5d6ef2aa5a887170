"""How fast two or more commits' number readers read the same numbers, read in turn.

    python benchmarks/number_speed.py e2f518f HEAD --kinds photos enlarged --count 300 --turns 2
    python benchmarks/number_speed.py HEAD HEAD          # the machine's noise: one reader against itself

This machine's speed swings by a third to a half within an hour, so medians read at two times say
little about a change. This makes read_numbers.py's pictures once (the first --count numbers of each
kind of --seed, as PNG or JPEG bytes), then reads them with each commit's reader in turn, --turns
times over (A, B, A, B). Each reading runs in a fresh process inside a checkout of its commit (a
temporary git worktree), in fp32 with 2 threads, with that commit's weights and judges, and times
use.read_number from the picture's bytes as read_numbers.py does. Nothing else should run meanwhile.
Prints and writes (--out) each kind's median ms by commit and turn, and each commit's ratio to the
first commit's within the same turn.
"""
import argparse
import io
import json
import pickle
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
data = read_numbers = torch = None  # this checkout's modules, imported only by the process that compares


def short_name(k):
    """A kind of read_numbers.KINDS as --kinds names it: photos, enlarged, separated, touching-2-8, ..."""
    kind, lengths, look = read_numbers.KINDS[k]
    looks = {read_numbers.PHOTOS: "photos", read_numbers.BLOCKY: "enlarged"}
    return looks.get(look, kind + ("" if lengths == (4, 4) else "-2-8"))


def read_in_checkout(pictures_file):
    """Inside a checkout (the working directory): read every picture with its reader; print the seconds of
    each read as JSON, by kind."""
    sys.path.insert(0, str(Path.cwd()))  # this checkout's modules, not the ones beside this script
    import torch
    import use

    torch.set_num_threads(2)
    device = torch.device("cpu")
    model = use.load_trained_model(use.SHIPPED_WEIGHTS, device)
    judge = use.number_judge(device)
    seconds = {}
    for kind, pictures in pickle.loads(Path(pictures_file).read_bytes()).items():
        seconds[kind] = []
        for raw in pictures:
            started = time.perf_counter()
            try:
                use.read_number(model, io.BytesIO(raw), device, judge=judge)
            except ValueError:
                pass  # a refusal is a reading too, and timed as one
            seconds[kind].append(time.perf_counter() - started)
    print(json.dumps(seconds))


def make_pictures(kinds, seed, count, data_dir):
    """{short name: [picture bytes]}: the first `count` numbers of each kind, as read_numbers.py makes them."""
    data.prepare_mnist(data_dir)
    images, labels = (t.numpy() for t in data.load_mnist(data_dir, train=False))
    pictures = {}
    for k, (_, _, look) in enumerate(read_numbers.KINDS):
        if short_name(k) in kinds:
            numbers = read_numbers.kind_numbers(images, labels, count, seed, k)
            pictures[short_name(k)] = [read_numbers.picture_bytes(image, look == read_numbers.PHOTOS)
                                       for image, _ in numbers]
    return pictures


def commit_of(name):
    result = subprocess.run(["git", "rev-parse", "--short=12", f"{name}^{{commit}}"], cwd=ROOT,
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"error: {name}: not a commit of this repository")
    return result.stdout.strip()


def read_in_turn(commits, pictures_file, turns, workspace):
    """[{kind: median ms} of each commit's reading, in the order given] for each turn. A commit may be
    given twice: its readings against each other show the machine's own noise."""
    checkouts = {commit: Path(workspace) / commit for commit in commits}
    for commit, checkout in checkouts.items():
        subprocess.run(["git", "worktree", "add", "--quiet", "--detach", str(checkout), commit], cwd=ROOT, check=True)
    medians = []
    try:
        for turn in range(1, turns + 1):
            medians.append([])
            for commit in commits:
                reading = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--in-checkout",
                                          str(pictures_file)], cwd=checkouts[commit], capture_output=True,
                                         text=True)
                if reading.returncode != 0:
                    sys.exit(f"error: reading at {commit} failed:\n{reading.stderr.strip()}")
                seconds = json.loads(reading.stdout.strip().splitlines()[-1])
                medians[-1].append({kind: 1000 * statistics.median(s) for kind, s in seconds.items()})
                read = ", ".join(f"{kind} {ms:.1f} ms" for kind, ms in medians[-1][-1].items())
                print(f"turn {turn}, {commit}: {read}", flush=True)
    finally:
        for checkout in checkouts.values():
            subprocess.run(["git", "worktree", "remove", "--force", str(checkout)], cwd=ROOT)
    return medians


def table(commits, kinds, medians):
    """The Markdown rows: each kind's median ms a turn by commit, and each commit's ratio to the first's."""
    lines = ["| kind | turn | " + " | ".join(f"{c} median ms" for c in commits) +
             "".join(f" | {c} / {commits[0]}" for c in commits[1:]) + " |",
             "|---|---|" + "---|" * (2 * len(commits) - 1)]
    for kind in kinds:
        for turn, readings in enumerate(medians, 1):
            ms = [reading[kind] for reading in readings]
            lines.append(f"| {kind} | {turn} | " + " | ".join(f"{m:.1f}" for m in ms) +
                         "".join(f" | {m / ms[0]:.2f}" for m in ms[1:]) + " |")
    return lines


def main():
    names = [short_name(k) for k in range(len(read_numbers.KINDS))]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("commits", nargs="+", help="the commits to compare (the first is the baseline)")
    parser.add_argument("--kinds", nargs="+", choices=names, default=["photos", "enlarged"])
    parser.add_argument("--seed", type=int, default=read_numbers.HELD_OUT_SEED,
                        help=f"which numbers (default: {read_numbers.HELD_OUT_SEED}, as read_numbers.py)")
    parser.add_argument("--count", type=int, default=300, help="numbers of each kind (default: 300)")
    parser.add_argument("--turns", type=int, default=2, help="how many times each commit reads (default: 2)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", help="also write the table here (Markdown)")
    args = parser.parse_args()
    commits = [commit_of(name) for name in args.commits]
    kinds = [name for name in names if name in args.kinds]
    with tempfile.TemporaryDirectory() as workspace:
        pictures_file = Path(workspace) / "pictures.pickle"
        pictures_file.write_bytes(pickle.dumps(make_pictures(kinds, args.seed, args.count, args.data_dir)))
        medians = read_in_turn(commits, pictures_file, args.turns, workspace)
    command = shlex.join(["python", "benchmarks/number_speed.py", *sys.argv[1:]])
    text = "\n".join([f"`{command}` (seed {args.seed}, the first {args.count} of each kind, fp32, 2 threads, "
                      f"{platform.machine()}, torch {torch.__version__}; the commits read in turn, each in "
                      "its own process)", "", *table(commits, kinds, medians), ""])
    print(f"\n{text}")
    if args.out:
        data.write_atomically(ROOT / args.out, text.encode())
        print(f"Wrote {args.out}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--in-checkout"]:  # a reading inside a commit's checkout: none of this one's modules
        read_in_checkout(sys.argv[2])
    else:
        sys.path[:0] = [str(ROOT), str(BENCHMARKS)]
        import data
        import read_numbers
        import torch
        main()
