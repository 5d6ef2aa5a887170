"""The evidence header of mnist_99_4.py, and the README's frontier, state what the committed benchmark results
say of today's default."""
import json
import re
from pathlib import Path

import mnist_99_4

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def header():
    return mnist_99_4.__doc__


def todays_default_fingerprint():
    return mnist_99_4.fingerprint(mnist_99_4.build_parser().parse_args(["train"]))


def default_seed_table():
    """benchmarks/results/default_seeds.json, the ten-seed table of the default, and its one row."""
    table = json.loads((RESULTS / "default_seeds.json").read_text())
    (row,) = table["summaries"]
    return table, row


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


def header_as_one_line():
    """The header with its shell line continuations joined and runs of spaces made one."""
    return re.sub(r"\s+", " ", re.sub(r"\s*\\\n\s*", " ", header()))


def speed_results():
    return {path: json.loads(path.read_text()) for path in sorted(RESULTS.glob("**/speed.json"))}


def speed_benchmarks_quoted():
    """(median, speed-up, results path without .md) of each speed benchmark the header quotes, in its order."""
    return re.findall(r"median ([\d.]+) s start to exit .*?, ([\d.]+)x c766afa's default .*?\((\S+)\.md\)",
                      header_as_one_line())


def test_header_speed_is_the_speed_benchmarks():
    stated = speed_benchmarks_quoted()
    assert {ROOT / f"{path}.json" for _, _, path in stated} == set(speed_results()), \
        "the header gives the median run time and the speed-up of every speed benchmark in benchmarks/results"
    for median, speedup, path in stated:
        speed = json.loads((ROOT / f"{path}.json").read_text())
        assert median == f"{speed['new_default']['median']['wall_clock_seconds']:.0f}", path
        assert speedup == f"{speed['speedup_over_old_default']:.2f}", path
        assert speed["command"] in header_as_one_line(), path


def default_fingerprint_timed(speed):
    """The fingerprint of the default that a speed benchmark's new_default runs trained (one for all)."""
    assert speed["new_default"]["train_args"] == []
    (timed,) = {json.loads((ROOT / run["run_dir"] / "metrics.json").read_text())["fingerprint"]
                for run in speed["new_default"]["runs"]}
    return timed


def test_the_first_speed_benchmark_quoted_timed_todays_default():
    _, _, first = speed_benchmarks_quoted()[0]
    assert default_fingerprint_timed(json.loads((ROOT / f"{first}.json").read_text())) == \
        todays_default_fingerprint(), f"{first} did not time today's default: rerun its command"


def test_a_speed_benchmark_of_an_earlier_default_names_it():
    todays, stated = todays_default_fingerprint(), header_as_one_line()
    for path, speed in speed_results().items():
        timed = default_fingerprint_timed(speed)
        assert timed == todays or f"fingerprint {timed}" in stated, \
            f"{path.relative_to(ROOT)} timed an earlier default: the header says which (its fingerprint)"
