"""Train the default recipe on several seeds (and widths) and tabulate the final test accuracy.

    python benchmarks/seeds.py                         # default width, seeds 0-4
    python benchmarks/seeds.py --widths 5 6 8 10       # the parameter/accuracy frontier

Each run is a full `python mnist_99_4.py --seed S --width W` with everything
else at its default (a run already in --out with the default recipe is
reused); the figure per run is the final model's test accuracy
after the fixed schedule. Writes a Markdown table and a JSON file of every
run to --out (default benchmarks/results/), then prints the table.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
import mnist_99_4  # noqa: E402
from model import DEFAULT_WIDTH  # noqa: E402


def run_training(run_dir, *train_args, threads=None):
    """`python mnist_99_4.py ARGS --out RUN_DIR` in a fresh process; returns its metrics.json.

    `threads` sets OMP_NUM_THREADS for the run (default: PyTorch's own choice).
    A failed run ends this program with the run's last line of error output.
    """
    command = [sys.executable, str(ROOT / "mnist_99_4.py"), *train_args, "--out", str(run_dir)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads)) if threads else None
    result = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["no message"])[-1]
        sys.exit(f"error: python mnist_99_4.py {' '.join(train_args)} failed: {last_line}")
    return json.loads((Path(run_dir) / "metrics.json").read_text())


# Every default that shapes the training, so a flag added to DEFAULTS joins it; a
# reused run must have used today's. Left out: what this script sets per run, and
# where or how it runs.
NOT_RECIPE = {"width", "seed", "val", "data_dir", "device", "precision"}
RECIPE_KEYS = sorted(mnist_99_4.DEFAULTS.keys() - NOT_RECIPE)


def ran_with_default_recipe(metrics):
    recorded = metrics["args"]
    return all(recorded.get(key) == mnist_99_4.DEFAULTS[key] for key in RECIPE_KEYS)


def train(width, seed, run_dir, threads, extra_args):
    """One full training run at `width` and `seed`; returns its metrics.json.

    A run that already finished in `run_dir` with the default recipe is
    reused, so an interrupted benchmark continues where it stopped and a
    table can be rebuilt at once; a run made with other settings is redone.
    """
    finished = run_dir / "metrics.json"
    if finished.exists() and not extra_args:
        metrics = json.loads(finished.read_text())
        if ran_with_default_recipe(metrics):
            return metrics
    return run_training(run_dir, "--width", str(width), "--seed", str(seed), *extra_args, threads=threads)


def summarize(runs):
    accuracies = [r["test_accuracy"] for r in runs]
    return {"width": runs[0]["width"], "params": runs[0]["params"], "epochs": runs[0]["epochs"],
            "seeds": [r["args"]["seed"] for r in runs], "test_accuracy": accuracies,
            "mean": statistics.mean(accuracies),
            "std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            "min": min(accuracies), "max": max(accuracies),
            "runs_at_or_above_99_4": sum(a >= 99.4 for a in accuracies),
            "seconds_per_run": statistics.mean(r["seconds"] for r in runs)}


def markdown_table(summaries):
    seeds = summaries[0]["seeds"]
    head = ("| width | params | epochs | " + " | ".join(f"seed {s}" for s in seeds)
            + " | mean | std | min | >= 99.4% | s/run |")
    rule = "|" + "---|" * (head.count("|") - 1)
    rows = [f"| {s['width']} | {s['params']:,} | {s['epochs']} | "
            + " | ".join(f"{a:.2f}" for a in s["test_accuracy"])
            + f" | {s['mean']:.2f} | {s['std']:.2f} | {s['min']:.2f} | "
              f"{s['runs_at_or_above_99_4']}/{len(s['seeds'])} | {s['seconds_per_run']:.0f} |"
            for s in summaries]
    return "\n".join([head, rule, *rows])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[DEFAULT_WIDTH],
                        help=f"network widths (default: {DEFAULT_WIDTH})")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                        help="random seeds (default: 0 1 2 3 4)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at a time, sharing the cores; s/run is then per shared run (default: 1)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"),
                        help="folder for the table, the JSON and every run (default: benchmarks/results)")
    parser.add_argument("--name", default=None, help="file name stem (default: seeds_w<widths>)")
    args, extra_args = parser.parse_known_args()  # anything else goes to mnist_99_4.py

    out = Path(args.out)
    name = args.name or "seeds_w" + "-".join(map(str, args.widths))
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    jobs = [(w, s) for w in args.widths for s in args.seeds]
    started = time.perf_counter()
    results = {}
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {job: pool.submit(train, *job, out / "runs" / f"w{job[0]}_seed{job[1]}", threads, extra_args)
                   for job in jobs}
        for (width, seed), future in futures.items():
            results[width, seed] = metrics = future.result()
            print(f"width {width} seed {seed}: {metrics['test_accuracy']:.2f}% "
                  f"({metrics['params']:,} parameters, {metrics['seconds']:.0f} s)", flush=True)

    summaries = [summarize([results[w, s] for s in args.seeds]) for w in args.widths]
    table = markdown_table(summaries)
    command = " ".join(["python", "benchmarks/seeds.py", *sys.argv[1:]])
    report = {"command": command, "wall_clock_seconds": time.perf_counter() - started,
              "device": results[jobs[0]]["device"], "precision": results[jobs[0]]["precision"],
              "torch": results[jobs[0]]["torch"], "jobs": args.jobs, "summaries": summaries}
    mnist_99_4.save_atomically(report, out / f"{name}.json")
    data.write_atomically(out / f"{name}.md", f"`{command}`\n\n{table}\n".encode())
    print(f"\n{table}\n\nWrote {out / (name + '.json')} and {out / (name + '.md')}")


if __name__ == "__main__":
    main()
