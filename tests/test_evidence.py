"""The evidence header of mnist_99_4.py and the README state what the committed results say of today's
default, and every results file they name exists."""
import json
import re
from pathlib import Path

import mnist_99_4

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def header():
    return mnist_99_4.__doc__


def evidence_lines():
    """The header from its 'Evidence' line to its end."""
    return header()[header().index("Evidence"):].strip().splitlines()


def todays_default_fingerprint():
    return mnist_99_4.fingerprint([])


def default_seed_table():
    """benchmarks/results/default_seeds.json, the ten-seed table of the default, and its one row."""
    table = json.loads((RESULTS / "default_seeds.json").read_text())
    (row,) = table["summaries"]
    return table, row


def test_the_evidence_header_is_short():
    assert len(evidence_lines()) <= 12


def test_the_seed_table_was_made_with_todays_default():
    _, row = default_seed_table()
    assert row["train_args"] == [] and row["val"] == 0
    assert row["fingerprint"] == todays_default_fingerprint(), \
        "the default changed since benchmarks/results/default_seeds.json: rerun the command in the header"


def test_the_frontier_plots_todays_default_by_the_seed_tables_runs():
    (point,) = [s for s in json.loads((RESULTS / "frontier.json").read_text())["summaries"] if s["train_args"] == []]
    assert point["fingerprint"] == todays_default_fingerprint(), \
        "the default changed since benchmarks/results/frontier.json: rerun the command in the README"
    _, row = default_seed_table()
    runs = dict(zip(row["seeds"], row["test_accuracy"]))
    assert point["test_accuracy"] == [runs[seed] for seed in point["seeds"]]


def test_header_accuracy_is_the_seed_tables():
    table, row = default_seed_table()
    stated = re.search(r"seeds (\d+)-(\d+): mean ([\d.]+)%, lowest ([\d.]+)%, (\d+) of (\d+) at 99\.4% or more",
                       header())
    assert stated, "the header names the seeds, the mean, the lowest run and the count at 99.4%"
    first, last, mean, lowest, at_99_4, runs = stated.groups()
    assert [int(first), int(last)] == [row["seeds"][0], row["seeds"][-1]] and int(runs) == len(row["seeds"])
    assert mean == f"{row['mean']:.2f}" and lowest == f"{row['min']:.2f}"
    assert int(at_99_4) == row["runs_at_or_above_99_4"]
    assert table["command"] in header()


def test_header_speed_is_the_speed_benchmarks_and_it_timed_todays_default():
    one_line = re.sub(r"\s+", " ", header())
    median, speedup, path = re.search(r"median ([\d.]+) s start to exit .*?, ([\d.]+)x c766afa's default .*?"
                                      r"\((\S+)\.md\)", one_line).groups()
    speed = json.loads((ROOT / f"{path}.json").read_text())
    assert median == f"{speed['new_default']['median']['wall_clock_seconds']:.0f}"
    assert speedup == f"{speed['speedup_over_old_default']:.2f}"
    assert speed["command"] in one_line
    timed = {json.loads((ROOT / run["run_dir"] / "metrics.json").read_text())["fingerprint"]
             for run in speed["new_default"]["runs"]}
    assert timed == {todays_default_fingerprint()}, f"{path} did not time today's default: rerun its command"


def test_every_results_file_the_header_and_the_readme_name_exists():
    texts = header() + (ROOT / "README.md").read_text() + (ROOT / "benchmarks" / "RESEARCH.md").read_text()
    named = set(re.findall(r"benchmarks/(?:results|records)/[\w./-]+\.(?:md|json|pt)", texts))
    assert named, "the texts name their results files"
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"named but not committed: {missing}"
