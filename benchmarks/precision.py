"""Does bfloat16 training, which `--precision auto` picks on a CPU with native bf16 (AVX-512 BF16,
AMX), give what float32 gives? Seeds of the default, each in both precisions, on the validation split.

    python benchmarks/precision.py --seeds 0 1 2 3 4 --jobs 2

Each run is `python mnist_99_4.py --val 10000 --seed S --precision P`, in
benchmarks/results/precision_runs/P_seedS (a finished run there is reused: the
folder names the precision, which a recipe's fingerprint leaves out, and it lies
outside the runs/ folders where seeds.py looks for runs to reuse). Writes
benchmarks/results/precision.md: per seed, the final validation accuracy in
each precision, the paired difference, and the seconds a run took.
"""
import argparse
import json
import shlex
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
import data  # noqa: E402
import runs  # noqa: E402
from seeds import run_training  # noqa: E402

PRECISIONS = ("fp32", "bf16")


def one_run(precision, seed, val, threads):
    run_dir = Path("benchmarks/results/precision_runs") / f"{precision}_seed{seed}"
    finished = ROOT / run_dir / "metrics.json"
    if finished.exists():
        return json.loads(finished.read_text())
    return run_training(run_dir, "--val", str(val), "--seed", str(seed), "--precision", precision, threads=threads)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--val", type=int, default=10000, help="validation images held out (default: 10000)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (default: 1)")
    parser.add_argument("--out", default="benchmarks/results/precision.md")
    args = parser.parse_args()
    threads = max(1, 2 // args.jobs) if args.jobs > 1 else None
    jobs = [(p, s) for s in args.seeds for p in PRECISIONS]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = dict(zip(jobs, pool.map(lambda job: one_run(*job, args.val, threads), jobs)))
    rows, differences = [], []
    for seed in args.seeds:
        fp32, bf16 = results["fp32", seed], results["bf16", seed]
        difference = bf16["val_accuracy"] - fp32["val_accuracy"]
        differences.append(difference)
        rows.append(f"| {seed} | {fp32['val_accuracy']:.2f} | {bf16['val_accuracy']:.2f} | {difference:+.2f} "
                    f"| {fp32['seconds']:.0f} | {bf16['seconds']:.0f} |")
    mean = {p: statistics.mean(results[p, s]["val_accuracy"] for s in args.seeds) for p in PRECISIONS}
    error = statistics.stdev(differences) / len(differences) ** 0.5 if len(differences) > 1 else float("nan")
    first = results["bf16", args.seeds[0]]
    command = shlex.join(["python", "benchmarks/precision.py", *sys.argv[1:]])
    report = "\n".join([
        f"`{command}` (commit {runs.git_commit()}, torch {first['torch']}, {first['device']}, "
        f"{args.jobs} run(s) at once)", "",
        "Final validation accuracy (%) of the default, 10,000 training images held out:", "",
        "| seed | fp32 | bf16 | bf16 - fp32 | fp32 s | bf16 s |", "|---|---|---|---|---|---|", *rows,
        f"| **mean** | **{mean['fp32']:.3f}** | **{mean['bf16']:.3f}** | **{mean['bf16'] - mean['fp32']:+.3f}** "
        f"(standard error {error:.3f}) | | |"])
    data.write_atomically(args.out, (report + "\n").encode())
    print(report + f"\n\nwrote {args.out}")


if __name__ == "__main__":
    main()
