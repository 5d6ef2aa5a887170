"""Two configurations compared seed by seed, over the runs of several seed tables.

    python benchmarks/paired.py benchmarks/results/val_round26.json benchmarks/results/val_round27.json \\
        --config '--elastic 1' --against '--stem pool-first --epochs 12 --plain-epochs 2'

A ten-seed mean moves by about 0.02 points from seed luck alone, so a gain of
a few hundredths needs more seeds than one table holds, and the two rows of
each seed should be compared with each other (the same seed shuffles the
same batches in both). This reads the JSON files that benchmarks/seeds.py
writes, finds each configuration's row in every table by its fingerprint
(so the default spelled out and '' match), pairs their runs by seed, and
prints every pair, the mean paired difference, its standard error and their
ratio. With --name it also writes benchmarks/results/NAME.md.
"""
import argparse
import json
import math
import shlex
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
from seeds import expected_fingerprint  # noqa: E402


def accuracies_by_seed(tables, fingerprint):
    """{(table, seed): accuracy} of the configuration with this fingerprint, from every table that has it."""
    found = {}
    for table in tables:
        for summary in json.loads(Path(table).read_text())["summaries"]:
            if summary["fingerprint"] == fingerprint:
                found.update({(table, seed): accuracy
                              for seed, accuracy in zip(summary["seeds"], summary[summary["measure"]])})
    return found


def paired_report(tables, config, against):
    """The Markdown report of `config` against `against`, seed by seed; exits if no seed has both."""
    ours = accuracies_by_seed(tables, expected_fingerprint(shlex.split(config)))
    theirs = accuracies_by_seed(tables, expected_fingerprint(shlex.split(against)))
    pairs = sorted(key for key in ours if key in theirs)
    if len(pairs) < 2:
        sys.exit(f"error: {len(pairs)} seed(s) with runs of both configurations in these tables; need 2 or more")
    differences = [ours[key] - theirs[key] for key in pairs]
    mean = statistics.mean(differences)
    standard_error = statistics.stdev(differences) / math.sqrt(len(differences))
    rows = [f"| {Path(table).stem} | {seed} | {ours[table, seed]:.2f} | {theirs[table, seed]:.2f} | "
            f"{ours[table, seed] - theirs[table, seed]:+.2f} |" for table, seed in pairs]
    return "\n".join([
        f"`{config}` (A) against `{against}` (B), final model's accuracy, %:", "",
        "| table | seed | A | B | A - B |", "|---|---|---|---|---|", *rows, "",
        f"{len(pairs)} seeds: A {statistics.mean(ours[key] for key in pairs):.3f}, "
        f"B {statistics.mean(theirs[key] for key in pairs):.3f}; paired difference {mean:+.3f}, "
        f"standard error {standard_error:.3f}, {mean / standard_error if standard_error else math.inf:+.2f} "
        f"standard errors from nothing"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tables", nargs="+", help="JSON files written by benchmarks/seeds.py")
    parser.add_argument("--config", required=True, metavar="FLAGS", help="configuration A's training flags, quoted")
    parser.add_argument("--against", required=True, metavar="FLAGS",
                        help="configuration B's training flags, quoted ('' for the default)")
    parser.add_argument("--name", help="also write the report to benchmarks/results/NAME.md")
    args = parser.parse_args()
    report = paired_report(args.tables, args.config, args.against)
    print(report)
    if args.name:
        command = shlex.join(["python", "benchmarks/paired.py", *sys.argv[1:]])
        path = ROOT / "benchmarks" / "results" / f"{args.name}.md"
        data.write_atomically(path, f"`{command}`\n\n{report}\n".encode())
        print(f"\nWrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
