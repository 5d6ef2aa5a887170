"""Train configurations over several seeds and tabulate the final model's accuracy.

    python benchmarks/seeds.py                                   # the default, test set, seeds 0-4
    python benchmarks/seeds.py --widths 6 7 8 --name frontier    # one row per width
    python benchmarks/seeds.py --val 10000 --seeds 0 1 2 3 \\
        --config "--width 6" --config "--width 6 --plain-epochs 2"  # choose on validation
    python benchmarks/seeds.py --commit 437f291 --out benchmarks/records --config "--elastic 1" ...
                                                                 # a flag that has since left the program

Each run is a full `python mnist_99_4.py --seed S [--val N] FLAGS`, where
FLAGS is one --config (or `--width W` for each of --widths), followed by any
flag this script does not know, which goes to every run. With --commit REV,
the program (--program too) runs exactly as it was at REV, from a git worktree
of that commit, and its runs record REV. The figure per run is the final
model's accuracy after the fixed schedule: on the validation split with --val
(the table then shows no test figure: tune on it), else on the test set.

A finished run is reused when its recorded fingerprint (the recipe and the
network), seed, --val, precision and commit match, in whichever runs folder of
benchmarks/ it is (the same recipe spelled with other flags names another
folder), so an interrupted table continues where it stopped and a table can be
rebuilt at once. The commit must be clean and the same, since the same recipe
at another commit may be other arithmetic; --reuse-any-commit lifts that, and
the table then names the commits its runs were made at. A finished run of
another recipe in the run's folder is kept: the new run goes beside it, its
fingerprint added to the folder's name. Writes a Markdown table and a JSON file
to --out (default benchmarks/results/), then prints the table.
"""
import argparse
import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
import mnist_99_4  # noqa: E402
import runs  # noqa: E402
import use  # noqa: E402

ANY_COMMIT = "any"  # --reuse-any-commit
LABEL_LENGTH = 30  # a run folder's label at most: every tracked path stays under 100 characters


def run_training(run_dir, *train_args, threads=None, program_dir=ROOT, program="mnist_99_4.py"):
    """`python PROGRAM ARGS --out RUN_DIR` in a fresh process; returns its metrics.json.

    `threads` sets OMP_NUM_THREADS for the run (default: PyTorch's own choice).
    `program_dir` is the checkout whose mnist_99_4.py runs (benchmarks/speed.py
    runs an older one); RUN_DIR is relative to it. A failed run ends this
    program with the run's last line of error output.
    """
    command = [sys.executable, program, *train_args, "--out", str(run_dir)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads)) if threads else None
    result = subprocess.run(command, cwd=program_dir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["no message"])[-1]
        sys.exit(f"error: python {program} {' '.join(train_args)} failed: {last_line}")
    return json.loads((Path(program_dir) / run_dir / "metrics.json").read_text())


def program_at(commit, folder):
    """A git worktree of `commit` in `folder`, reading MNIST from this checkout's data/ (its default
    --data-dir): its programs run as they were, and record the commit they ran at. Worktrees whose
    temporary folder is gone are forgotten first."""
    subprocess.run(["git", "worktree", "prune"], cwd=ROOT, capture_output=True)
    added = subprocess.run(["git", "worktree", "add", "--detach", str(folder), commit], cwd=ROOT,
                           capture_output=True, text=True)
    if added.returncode != 0:
        sys.exit(f"error: commit {commit} is not in this clone's history (git fetch --unshallow)")
    (ROOT / "data").mkdir(exist_ok=True)
    (Path(folder) / "data").symlink_to(ROOT / "data", target_is_directory=True)
    return Path(folder)


def remove_worktree(folder):
    subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT, capture_output=True)


def research_program(path):
    """A research program's module (benchmarks/reparam.py, say): it trains through mnist_99_4 and
    says the fingerprint of its runs with a fingerprint(train_args) of its own."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expected_fingerprint(train_args, program_dir=ROOT, program="mnist_99_4.py"):
    """The fingerprint `program` in `program_dir` will record for a run with these flags: each program
    says it with a fingerprint(train_args) of its own."""
    if program_dir == ROOT:
        return research_program(program).fingerprint(train_args) if program != "mnist_99_4.py" else \
            mnist_99_4.fingerprint(train_args)
    # Another commit's program says it in a process of its own, where its own modules are imported.
    result = subprocess.run([sys.executable, "-c", ASK_FINGERPRINT, program, *train_args], cwd=program_dir,
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"error: the program at that commit refuses {' '.join(train_args)}: "
                 f"{(result.stderr.strip().splitlines() or ['no message'])[-1]}")
    return result.stdout.strip()


# Run in an older checkout. Before SETTINGS, mnist_99_4 computed a fingerprint from parsed flags.
ASK_FINGERPRINT = """
import importlib.util, sys
sys.path.insert(0, ".")
spec = importlib.util.spec_from_file_location("program", sys.argv[1])
program = importlib.util.module_from_spec(spec)
spec.loader.exec_module(program)
flags = sys.argv[2:]
if sys.argv[1] == "mnist_99_4.py" and not hasattr(program, "SETTINGS"):
    older = getattr(program, "recipe_fingerprint", None) or program.fingerprint
    print(older(program.build_parser().parse_args(["train", *flags])))
else:
    print(program.fingerprint(flags))
"""


def finished_runs(out):
    """Every finished run in benchmarks/*/runs and OUT/runs, by (fingerprint, seed, --val): a list of
    folders each."""
    found = {}
    paths = {*(ROOT / "benchmarks").glob("*/runs/*/metrics.json"), *(ROOT / out).glob("runs/*/metrics.json")}
    for path in sorted(paths):
        metrics = json.loads(path.read_text())
        for fingerprint in recorded_fingerprints(metrics):
            found.setdefault((fingerprint, metrics["args"].get("seed"), metrics["args"].get("val")), []).append(
                path.parent)
    return found


def recorded_fingerprints(metrics):
    """Today's fingerprint of a run, and the one its own program computed where benchmarks/rekey.py
    changed it (what seeds.py --commit asks that program for)."""
    return {metrics.get("fingerprint"), metrics.get("fingerprint_as_recorded", metrics.get("fingerprint"))}


def expected_precision(config, program_dir=ROOT):
    """The precision a run of `config` would train in here: --precision, or what `auto` picks on this
    machine's device (bf16 on a CPU with native bfloat16). A fingerprint leaves precision out, as it
    does the device, so a finished run is reused only when its recorded precision is this one. Another
    commit's program may pick `auto`'s precision otherwise: its runs are then matched as they were (None)."""
    flags = dict(zip(config, config[1:]))  # each flag with the word after it
    requested = flags.get("--precision", "auto")
    if program_dir != ROOT and requested == "auto":
        return None
    return use.pick_precision(requested, use.pick_device(flags.get("--device", "auto")))


def train(config, seed, val, run_dir, threads, program_dir=ROOT, finished=None, program="mnist_99_4.py",
          commit=ANY_COMMIT):
    """One full training run of `config` (a list of flags) at `seed`; returns its metrics.json.

    A finished run of this recipe, seed, --val and `commit` (or ANY_COMMIT) is reused: in run_dir,
    else in any folder beside it (the same run under flags spelled another way, as when a default changes
    and a table spells out the old one). A run of another recipe in run_dir is left as it is, and this run
    goes to run_dir with the fingerprint added to its name.
    """
    run_args = [*config, "--seed", str(seed), "--val", str(val)]
    fingerprint = expected_fingerprint(run_args, program_dir, program)
    precision = expected_precision(config, program_dir)
    beside = run_dir.with_name(f"{run_dir.name}_{fingerprint}")
    elsewhere = (finished or {}).get((fingerprint, seed, val), [])
    for folder in (run_dir, beside, *elsewhere):
        metrics = finished_run(folder, fingerprint, seed, val, precision, commit)
        if metrics:
            return metrics
    target = beside if (ROOT / run_dir / "metrics.json").exists() else run_dir
    metrics = run_training(target, *run_args, threads=threads, program_dir=program_dir, program=program)
    if program_dir != ROOT:  # into this checkout, the commit written in where the program was too old to record it
        metrics["commit"] = metrics.get("commit") or runs.git_commit(program_dir)
        shutil.copytree(program_dir / target, ROOT / target, dirs_exist_ok=True)
        runs.save_atomically(metrics, ROOT / target / "metrics.json")
    return metrics


def finished_run(folder, fingerprint, seed, val, precision=None, commit=ANY_COMMIT):
    """The metrics.json of a finished run in `folder` with this fingerprint, seed, --val, (when given)
    precision, and `commit`, which must be clean; else None. Runs from before precision was recorded
    trained in float32."""
    finished = ROOT / folder / "metrics.json"
    if not finished.exists():
        return None
    metrics = json.loads(finished.read_text())
    recorded = metrics["args"]
    same = fingerprint in recorded_fingerprints(metrics) and recorded["seed"] == seed and recorded["val"] == val
    same = same and precision in (None, metrics.get("precision", "fp32"))
    clean = commit is not None and not commit.endswith("-dirty")  # a dirty tree is not one program
    same = same and (commit == ANY_COMMIT or (clean and metrics.get("commit") == commit))
    return metrics if same else None


def flags_label(config):
    """A folder-name label for a list of flags: '--width 6 --plain-epochs 2' -> 'width-6_plain-epochs-2'."""
    parts = " ".join(config).split("--")
    return "_".join(re.sub(r"[^A-Za-z0-9.=-]+", "-", part.strip().replace(",", "-")) for part in parts if part.strip())


def short_label(label):
    """A label cut to LABEL_LENGTH, with a hash of the whole so that two long labels stay apart."""
    if len(label) <= LABEL_LENGTH:
        return label
    return f"{label[:LABEL_LENGTH - 8]}-{hashlib.sha256(label.encode()).hexdigest()[:7]}"


def run_name(config, seed, val):
    """A run's folder name: its flags' label (shortened), the seed, and --val when given."""
    return f"{short_label(flags_label(config) or 'default')}_seed{seed}" + (f"_val{val}" if val else "")


def summarize(config, runs, val):
    """One table row: the configuration, its size, and each seed's final accuracy."""
    measure = "val_accuracy" if val else "test_accuracy"
    accuracies = [r[measure] for r in runs]
    return {"train_args": config, "fingerprint": runs[0]["fingerprint"], "width": runs[0]["width"],
            "layout": runs[0]["layout"], "params": runs[0]["params"], "multiply_adds": runs[0]["multiply_adds"],
            "epochs": runs[0]["epochs"], "val": val, "measure": measure,
            "seeds": [r["args"]["seed"] for r in runs], measure: accuracies,
            "mean": statistics.mean(accuracies),
            "std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            "min": min(accuracies), "max": max(accuracies),
            "runs_at_or_above_99_4": sum(a >= 99.4 for a in accuracies),
            "commits": sorted({str(r.get("commit")) for r in runs}),
            "seconds_per_run": statistics.mean(r["seconds"] for r in runs)}


def markdown_table(summaries):
    seeds, measure = summaries[0]["seeds"], summaries[0]["measure"]
    head = ("| flags | params | mult-adds | epochs | " + " | ".join(f"seed {s}" for s in seeds)
            + " | mean | std | min | >= 99.4% | s/run |")
    rule = "|" + "---|" * (head.count("|") - 1)
    rows = [f"| `{' '.join(s['train_args']) or '(default)'}` | {s['params']:,} | {s['multiply_adds']:,} | "
            f"{s['epochs']} | " + " | ".join(f"{a:.2f}" for a in s[measure])
            + f" | {s['mean']:.2f} | {s['std']:.2f} | {s['min']:.2f} | "
              f"{s['runs_at_or_above_99_4']}/{len(s['seeds'])} | {s['seconds_per_run']:.0f} |"
            for s in summaries]
    what = "validation accuracy (--val)" if measure == "val_accuracy" else "test accuracy"
    return "\n".join([f"Final model's {what}, %, per seed:", "", head, rule, *rows])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action="append", default=[], metavar="FLAGS",
                        help="one row's training flags, quoted; repeat for more rows")
    parser.add_argument("--widths", type=int, nargs="+", default=[],
                        help="a row of '--width W' for each (with no --config either: the default)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                        help="random seeds (default: 0 1 2 3 4)")
    parser.add_argument("--val", type=int, default=0, metavar="N",
                        help="hold N training images out and report validation accuracy (default: 0, test)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at a time, sharing the cores; s/run is then per shared run (default: 1)")
    parser.add_argument("--out", default="benchmarks/results",
                        help="folder for the table, the JSON and every run, relative to the repository "
                             "(default: benchmarks/results)")
    parser.add_argument("--name", default="seeds", help="file name stem (default: seeds)")
    parser.add_argument("--program", default="mnist_99_4.py", metavar="PATH",
                        help="the training program, relative to the repository: a research one such as "
                             "benchmarks/reparam.py takes mnist_99_4.py's flags and its own (default: mnist_99_4.py)")
    parser.add_argument("--commit", metavar="REV",
                        help="run the program as it was at this commit, as the research record's older "
                             "tables did; its runs record it (default: this checkout's)")
    parser.add_argument("--reuse-any-commit", action="store_true",
                        help="reuse a finished run of the same recipe made at another commit (default: the "
                             "same clean commit only: another commit may be other arithmetic)")
    args, common_flags = parser.parse_known_args()  # anything else goes to every run
    if len(set(args.seeds)) < len(args.seeds):  # one seed twice would train one folder twice at once
        parser.error(f"--seeds {' '.join(map(str, args.seeds))}: each seed once")

    configs = [shlex.split(c) for c in args.config] + [["--width", str(w)] for w in args.widths]
    configs = [config + common_flags for config in configs or [[]]]
    out = Path(args.out)
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    jobs = [(i, seed) for i in range(len(configs)) for seed in args.seeds]
    started = time.perf_counter()
    results, finished = {}, finished_runs(out)
    with tempfile.TemporaryDirectory() as scratch:
        program_dir = program_at(args.commit, Path(scratch) / "program") if args.commit else ROOT
        try:
            commit = runs.git_commit(program_dir)
            if commit and commit.endswith("-dirty") and not args.reuse_any_commit:
                print(f"{commit}: tracked files have changed, so no finished run is reused", file=sys.stderr)
            reuse = ANY_COMMIT if args.reuse_any_commit else commit
            with ThreadPoolExecutor(args.jobs) as pool:
                futures = {(i, seed): pool.submit(train, configs[i], seed, args.val,
                                                  out / "runs" / run_name(configs[i], seed, args.val), threads,
                                                  program_dir, finished, args.program, reuse)
                           for i, seed in jobs}
                for (i, seed), future in futures.items():
                    results[i, seed] = metrics = future.result()
                    accuracy = metrics["val_accuracy" if args.val else "test_accuracy"]
                    print(f"{' '.join(configs[i]) or '(default)'} seed {seed}: {accuracy:.2f}% "
                          f"({metrics['params']:,} parameters, {metrics['seconds']:.0f} s)", flush=True)
        finally:
            if args.commit:
                remove_worktree(program_dir)

    summaries = [summarize(configs[i], [results[i, s] for s in args.seeds], args.val)
                 for i in range(len(configs))]
    table = markdown_table(summaries)
    command = shlex.join(["python", "benchmarks/seeds.py", *sys.argv[1:]])
    first = results[jobs[0]]
    report = {"command": command, "wall_clock_seconds": time.perf_counter() - started,
              "device": first["device"], "precision": first["precision"], "torch": first["torch"],
              "commit": first["commit"], "jobs": args.jobs, "summaries": summaries}
    runs.save_atomically(report, ROOT / out / f"{args.name}.json")
    header = f"`{command}` ({first['precision']}, {first['device']}, torch {first['torch']})"
    data.write_atomically(ROOT / out / f"{args.name}.md", f"{header}\n\n{table}\n".encode())
    print(f"\n{table}\n\nWrote {out / (args.name + '.json')} and {out / (args.name + '.md')}")


if __name__ == "__main__":
    main()
