"""Give every committed run record today's fingerprint: a one-time re-keying, kept as the command it was.

    python benchmarks/rekey.py

The fingerprint names a run's recipe; benchmarks/seeds.py finds finished runs by it. Until ec262e1 it
was computed in a way that had to stay compatible with every earlier program (retired options hashed
at fixed values, a network built to read its layout). Today's (mnist_99_4.recipe_fingerprint) is a
hash of the recorded settings alone, so it can be computed again from any run's metrics.json. This
writes it into each metrics.json under benchmarks/*/runs/, keeping the one the run recorded as
"fingerprint_as_recorded" (what the program at the run's commit computes: seeds.py --commit matches
either), and puts the new fingerprints in the seeds.py tables (*.json) whose rows named the old ones.

A re-keyed run is still one made at its commit: seeds.py reuses it for today's table only with
--reuse-any-commit. Running this again changes nothing.
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import mnist_99_4  # noqa: E402
import runs  # noqa: E402

NETWORK_KEYS = {"channels", "stem", "activation"}  # Net's layout; a research network's adds more (reparam)


def todays_fingerprint(metrics):
    """recipe_fingerprint of a recorded run: its settings, and what its layout adds to Net's."""
    extra = {key: value for key, value in metrics.get("layout", {}).items() if key not in NETWORK_KEYS}
    return mnist_99_4.recipe_fingerprint({**metrics["args"], **extra})


def rekey_runs():
    """Re-key every run record; returns {old fingerprint: new} and the count changed."""
    renamed, changed = {}, 0
    for path in sorted(ROOT.glob("benchmarks/*/runs/*/metrics.json")):
        metrics = json.loads(path.read_text())
        old, new = metrics.get("fingerprint"), todays_fingerprint(metrics)
        if old is not None:
            renamed.setdefault(old, set()).add(new)
        if old != new:
            metrics = {**metrics, "fingerprint": new, "fingerprint_as_recorded": metrics.get(
                "fingerprint_as_recorded", old)}
            runs.save_atomically(metrics, path)
            changed += 1
    return renamed, changed


def rekey_tables(renamed):
    """The seeds.py tables' rows, by the runs behind them; returns the count of rows changed."""
    changed = 0
    for path in sorted(ROOT.glob("benchmarks/*/*.json")):
        table = json.loads(path.read_text())
        if not isinstance(table, dict) or not isinstance(table.get("summaries"), list):
            continue
        rows = 0
        for row in table["summaries"]:
            new = renamed.get(row.get("fingerprint"), set())
            if len(new) == 1 and row["fingerprint"] not in new:  # one new name: the row's runs agree
                row["fingerprint_as_recorded"] = row["fingerprint"]
                row["fingerprint"] = next(iter(new))
                rows += 1
        if rows:
            runs.save_atomically(table, path)
            changed += rows
    return changed


def main():
    renamed, changed = rekey_runs()
    rows = rekey_tables(renamed)
    print(f"Re-keyed {changed} run records and {rows} table rows")


if __name__ == "__main__":
    main()
