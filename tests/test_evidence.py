"""The evidence header of mnist_99_4.py and the README state what the committed results say of today's
default, and every results file they name exists."""
import json
import re
from pathlib import Path

import pytest

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


def test_the_seed_tables_were_made_with_todays_default_at_one_clean_commit():
    for name, precision in (("default_seeds", "fp32"), ("default_seeds_bf16", "bf16")):
        table = json.loads((RESULTS / f"{name}.json").read_text())
        (row,) = table["summaries"]
        assert row["train_args"] == ["--precision", precision] == ["--precision", table["precision"]]
        assert row["val"] == 0 and len(row["seeds"]) == 10
        assert row["fingerprint"] == todays_default_fingerprint(), \
            f"the default changed since benchmarks/results/{name}.json: rerun the command in the header"
        (commit,) = row["commits"]
        assert not commit.endswith("-dirty"), f"{name}.json was made in a changed checkout"


def test_the_frontier_figure_draws_the_default_from_todays_seed_table():
    readme = (ROOT / "README.md").read_text()
    assert "python benchmarks/frontier.py benchmarks/results/frontier.json benchmarks/results/default_seeds.json" \
        in readme


def test_header_accuracy_is_the_seed_tables():
    table, row = default_seed_table()
    stated = re.search(r"seeds (\d+)-(\d+), fp32: mean ([\d.]+)%, lowest ([\d.]+)%, (\d+) of (\d+) at 99\.4% or more",
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


@pytest.mark.slow
def test_a_dry_run_repeats_the_one_recorded_beside_the_seed_tables(tmp_path, mnist_dir):
    """The tables hold only while the trainer computes what it computed for them. Six steps, with
    augmentation and without, record that arithmetic (benchmarks/results/runs/dry_run_check, made at
    the tables' commit): a change that moves it, as moving one random draw moves every dropout mask
    (about 1e-3 of the loss), fails here. Another CPU or thread count moves it by about 1e-7."""
    recorded = json.loads((RESULTS / "runs" / "dry_run_check" / "metrics.json").read_text())
    (commit,) = default_seed_table()[1]["commits"]
    assert recorded["commit"] == commit, "the check was recorded at another commit than the ten-seed table"
    flags = ["--dry-run", "--epochs", "2", "--plain-epochs", "1", "--precision", "fp32", "--threads", "1"]
    assert mnist_99_4.main([*flags, "--data-dir", mnist_dir, "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["fingerprint"] == recorded["fingerprint"]
    for now, then in zip(again["history"], recorded["history"], strict=True):
        for key in ("train_loss", "test_loss"):
            assert now[key] == pytest.approx(then[key], rel=1e-5), f"epoch {now['epoch']}'s {key} moved"


def test_every_mutant_names_a_line_that_is_once_in_its_file():
    """benchmarks/mutants.py's mutants follow the code: a line changed since would make a mutant that no
    longer mutates anything (it stops there with "update the mutant")."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mutants", ROOT / "benchmarks" / "mutants.py")
    mutants = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mutants)
    stale = [bug for bug, name, original, _ in mutants.MUTANTS if (ROOT / name).read_text().count(original) != 1]
    assert not stale, stale
