"""Two configurations compared seed by seed, over the runs of several seed tables.

    python benchmarks/paired.py benchmarks/records/val_round26.json benchmarks/records/val_round27.json \\
        --config '--elastic 1' --against '--stem pool-first --epochs 12 --plain-epochs 2'

A ten-seed mean moves by about 0.02 points from seed luck alone, so a gain of
a few hundredths needs more seeds than one table holds, and the two rows of
each seed should be compared with each other (the same seed shuffles the
same batches in both). This reads the JSON files that benchmarks/seeds.py
writes, finds each configuration's row in every table by its fingerprint
(so the default spelled out and '' match; a configuration with a flag that
has since left the program, by its flags as written), pairs their runs by seed, and
prints every pair, the mean paired difference, its standard error and their
ratio. A fingerprint and a seed name one run, so the two runs of a pair may
come from different tables (a control run once, a candidate in a later
round). With --name it also writes benchmarks/records/NAME.md, beside the rounds.
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
from cli import UsageError  # noqa: E402
from seeds import expected_fingerprint  # noqa: E402


def row_key(config):
    """What names a configuration's rows: its fingerprint, or its flags as written where the program no
    longer takes them (a retired option: benchmarks/RESEARCH.md)."""
    flags = shlex.split(config)
    try:
        return "fingerprint", expected_fingerprint(flags)
    except UsageError:
        return "train_args", flags


def accuracies_by_seed(tables, config):
    """{seed: (table, accuracy)} of the configuration, from the first table that has the seed (a later
    table that reused the run has the same accuracy)."""
    field, value = row_key(config)
    found = {}
    for table in tables:
        for summary in json.loads(Path(table).read_text())["summaries"]:
            if summary[field] == value:
                for seed, accuracy in zip(summary["seeds"], summary[summary["measure"]]):
                    found.setdefault(seed, (Path(table).stem, accuracy))
    return found


def paired_report(tables, config, against):
    """The Markdown report of `config` against `against`, seed by seed; exits if no seed has both."""
    ours, theirs = accuracies_by_seed(tables, config), accuracies_by_seed(tables, against)
    seeds = sorted(seed for seed in ours if seed in theirs)
    if len(seeds) < 2:
        sys.exit(f"error: {len(seeds)} seed(s) with runs of both configurations in these tables; need 2 or more")
    (a_tables, a), (b_tables, b) = (zip(*(runs[seed] for seed in seeds)) for runs in (ours, theirs))
    differences = [x - y for x, y in zip(a, b)]
    mean = statistics.mean(differences)
    standard_error = statistics.stdev(differences) / math.sqrt(len(differences))
    rows = [f"| {seed} | {x:.2f} ({a_table}) | {y:.2f} ({b_table}) | {x - y:+.2f} |"
            for seed, x, a_table, y, b_table in zip(seeds, a, a_tables, b, b_tables)]
    return "\n".join([
        f"`{config}` (A) against `{against}` (B), final model's accuracy, % (the table each run is from):", "",
        "| seed | A | B | A - B |", "|---|---|---|---|", *rows, "",
        f"{len(seeds)} seeds: A {statistics.mean(a):.3f}, "
        f"B {statistics.mean(b):.3f}; paired difference {mean:+.3f}, "
        f"standard error {standard_error:.3f}, {mean / standard_error if standard_error else math.inf:+.2f} "
        f"standard errors from nothing"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tables", nargs="+", help="JSON files written by benchmarks/seeds.py")
    parser.add_argument("--config", required=True, metavar="FLAGS", help="configuration A's training flags, quoted")
    parser.add_argument("--against", required=True, metavar="FLAGS",
                        help="configuration B's training flags, quoted ('' for the default)")
    parser.add_argument("--name", help="also write the report to benchmarks/records/NAME.md")
    args = parser.parse_args()
    report = paired_report(args.tables, args.config, args.against)
    print(report)
    if args.name:
        command = shlex.join(["python", "benchmarks/paired.py", *sys.argv[1:]])
        path = ROOT / "benchmarks" / "records" / f"{args.name}.md"
        data.write_atomically(path, f"`{command}`\n\n{report}\n".encode())
        print(f"\nWrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
