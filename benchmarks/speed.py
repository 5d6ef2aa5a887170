"""Time the default training run against the previous default recipe and a seed-style pipeline.

    python benchmarks/speed.py               # about 10 minutes on a 2-core CPU: run it on a quiet machine

Three pipelines, all timed in this one run, on the same machine:

- old default: `python mnist_99_4.py` of commit c766afa (width 8, 15 epochs,
  batch 256, max lr 0.1), the program exactly as it was, taken from this
  clone's git history into a temporary folder.
- new default: `python mnist_99_4.py` exactly as a user runs it.
  Both are timed from start to exit, --rounds times each, interleaved (old,
  new, new, old, old, new), and compared by the ratio of their medians: on a
  shared machine two runs of identical code can differ by a third. Each
  --compare "FLAGS" adds a third contender to the same rounds: this program
  with those flags, to measure what one change buys; each --compare-commit
  REV adds the default program of an earlier commit, to measure what the
  commits since then bought (the old default's way, from git history).
- reference: the usual course-project pipeline. torchvision PIL transforms per
  image (RandomRotation(7), ToTensor, Normalize) in a DataLoader with 2 workers,
  batch 128, SGD with Nesterov momentum and OneCycleLR, 15 epochs, float32,
  evaluating the test set after every epoch, with the seed projects' kind of
  network: 7,544 parameters, 3x3 convs each followed by ReLU, BatchNorm and
  Dropout 0.05, a 1x1 transition before the max-pool, a padded last conv,
  global average pooling and a 1x1 head (`SeedStyleNet` below). Only part of
  an epoch is timed (--reference-batches); the 15-epoch time is scaled from it.

Writes benchmarks/results/speed.json (every run, with its phase breakdown)
and speed.md (the table the README shows), and prints the table.
"""
import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
from runs import git_commit, save_atomically  # noqa: E402
import use  # noqa: E402
from model import count_parameters  # noqa: E402
from seeds import flags_label, program_at, run_training  # noqa: E402  (this folder is on the path as a script)

REFERENCE = dict(epochs=15, batch_size=128, max_lr=0.02, workers=2, rotation=7, test_batch=1000)

OLD_COMMIT = "c766afa"  # the default before the speed work: width 8, 15 epochs, batch 256, max lr 0.1


class SeedStyleNet(nn.Module):
    """The reference network: the layout of a 7,544-parameter seed project.

    Spatial sizes: 26, 24, 24 (1x1), 12 (pool), 10, 8, 6, 6 (padded), 1 (GAP).
    """

    def __init__(self, dropout=0.05):
        super().__init__()

        def block(c_in, c_out, padding=0):
            return [nn.Conv2d(c_in, c_out, 3, padding=padding, bias=False), nn.ReLU(),
                    nn.BatchNorm2d(c_out), nn.Dropout(dropout)]

        self.layers = nn.Sequential(
            *block(1, 16), *block(16, 10), nn.Conv2d(10, 10, 1, bias=False), nn.MaxPool2d(2),
            *block(10, 10), *block(10, 10), *block(10, 16), *block(16, 16, padding=1),
            nn.AvgPool2d(6), nn.Conv2d(16, 10, 1, bias=False))

    def forward(self, x):
        return F.log_softmax(self.layers(x).flatten(1), dim=1)


def reference_loaders(data_dir):
    normalize = transforms.Normalize((data.MNIST_MEAN,), (data.MNIST_STD,))
    train_set = datasets.MNIST(data_dir, train=True, transform=transforms.Compose(
        [transforms.RandomRotation(REFERENCE["rotation"]), transforms.ToTensor(), normalize]))
    test_set = datasets.MNIST(data_dir, train=False,
                              transform=transforms.Compose([transforms.ToTensor(), normalize]))
    train_loader = DataLoader(train_set, batch_size=REFERENCE["batch_size"], shuffle=True,
                              num_workers=REFERENCE["workers"], persistent_workers=True)
    test_loader = DataLoader(test_set, batch_size=REFERENCE["test_batch"], num_workers=REFERENCE["workers"])
    return train_loader, test_loader


def time_reference(model, data_dir, timed_batches):
    """Seconds for one reference epoch (train, then test), from `timed_batches` timed batches."""
    torch.manual_seed(0)
    train_loader, test_loader = reference_loaders(data_dir)
    optimizer = torch.optim.SGD(model.parameters(), lr=REFERENCE["max_lr"], momentum=0.9, nesterov=True,
                                weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=REFERENCE["max_lr"], pct_start=0.2,
                                                    epochs=REFERENCE["epochs"],
                                                    steps_per_epoch=len(train_loader))
    warmup = 5  # the workers' start-up and the first allocations are not a steady state
    model.train()
    for step, (x, y) in enumerate(train_loader):
        if step == warmup:
            started = time.perf_counter()
        if step == warmup + timed_batches:
            break
        loss = F.nll_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    train_seconds = (time.perf_counter() - started) / timed_batches * len(train_loader)

    model.eval()
    started = time.perf_counter()
    with torch.no_grad():
        for x, y in test_loader:
            model(x).argmax(1).eq(y).sum()
    test_seconds = time.perf_counter() - started
    return train_seconds, test_seconds


def time_run(program_dir, train_args, run_dir):
    """Wall-clock seconds of `python mnist_99_4.py ARGS --out RUN_DIR` in `program_dir`, start to exit,
    and the run's metrics.json."""
    started = time.perf_counter()
    metrics = run_training(run_dir, *train_args, program_dir=program_dir)
    return time.perf_counter() - started, metrics


def evaluation_images_per_second(model_path, data_dir, repeats=3):
    model = use.load_trained_model(model_path, torch.device("cpu"))
    images, _ = data.load_mnist(data_dir, train=False)
    use.predict_batches(model, images, torch.device("cpu"))  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        use.predict_batches(model, images, torch.device("cpu"))
    return repeats * len(images) / (time.perf_counter() - started)


def time_reference_pipeline(model, data_dir, timed_batches):
    """The reference pipeline's scaled 15-epoch time, printed and returned as a dict."""
    print(f"Reference pipeline: timing {timed_batches} training batches and one test pass...", flush=True)
    train_seconds, test_seconds = time_reference(model, data_dir, timed_batches)
    total = REFERENCE["epochs"] * (train_seconds + test_seconds)
    print(f"  {train_seconds:.1f} s per training epoch + {test_seconds:.1f} s per test pass "
          f"-> {total:.0f} s for {REFERENCE['epochs']} epochs", flush=True)
    return {"network": "seed-style 7,544-parameter net", "params": count_parameters(model),
            "seconds_15_epochs_scaled": total, "train_seconds_per_epoch": train_seconds,
            "test_seconds_per_pass": test_seconds, "timed_batches": timed_batches,
            "train_images_per_s": 60_000 / train_seconds, "eval_images_per_s": 10_000 / test_seconds,
            **REFERENCE}


def time_contenders(contenders, rounds):
    """Time each contender `rounds` times, interleaved (old, new, new, old, old, new, ...).

    `contenders` maps a name to (program folder, training flags, folder for its runs). A shared
    machine drifts by tens of percent over minutes; interleaving puts every contender through the
    same drift, and the medians shrug off one slow run.
    """
    names = list(contenders)
    runs = {name: [] for name in names}
    for i in range(rounds):
        for name in (names if i % 2 == 0 else names[::-1]):
            program_dir, train_args, runs_dir = contenders[name]
            run_dir = Path(runs_dir) / f"{flags_label(shlex.split(name))}_{i}"
            seconds, metrics = time_run(program_dir, [*train_args, "--seed", "1"], run_dir)
            print(f"  {name} run {i}: {seconds:.1f} s start to exit, test {metrics['test_accuracy']:.2f}%",
                  flush=True)
            runs[name].append({"wall_clock_seconds": seconds, "test_accuracy": metrics["test_accuracy"],
                               "training_loop_seconds": metrics["seconds"], "epochs": metrics["epochs"],
                               "params": metrics["params"], "phase_seconds": metrics.get("phase_seconds"),
                               # a program from before precision was recorded trained in float32
                               "precision": metrics.get("precision", "fp32"),
                               "run_dir": str(run_dir)})
    return runs


def machine_description():
    """CPUs, threads and torch; and the GPU, where the runs pick one (the reference stays on the CPU)."""
    if torch.cuda.is_available():
        gpu = f"{torch.cuda.get_device_name()} (the reference on the CPUs), "
    elif torch.backends.mps.is_available():
        gpu = "Apple MPS (the reference on the CPUs), "
    else:
        gpu = ""
    return f"{gpu}{os.cpu_count()} CPUs, {torch.get_num_threads()} threads, torch {torch.__version__}"


def median_run(runs):
    """The run with the median wall-clock time (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda run: run["wall_clock_seconds"])
    return ordered[(len(ordered) - 1) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each contender, interleaved (default: 3)")
    parser.add_argument("--compare", action="append", default=[], metavar="FLAGS",
                        help="also time this program with these training flags, quoted; repeatable")
    parser.add_argument("--compare-commit", action="append", default=[], metavar="REV",
                        help="also time the default program of an earlier commit; repeatable")
    parser.add_argument("--reference-batches", type=int, default=100,
                        help="reference training batches to time, of 469 an epoch (default: 100)")
    parser.add_argument("--data-dir", default="data", help="MNIST folder (default: data)")
    parser.add_argument("--out", default="benchmarks/results",
                        help="folder for speed.json, speed.md and the runs (default: benchmarks/results)")
    parser.add_argument("--name", default="speed", help="file name stem (default: speed)")
    args = parser.parse_args()
    commits = {f"commit {commit}": commit for commit in args.compare_commit}  # contender name: commit
    out = Path(args.out)
    data.prepare_mnist(args.data_dir)

    reference = time_reference_pipeline(SeedStyleNet(), args.data_dir, args.reference_batches)
    with tempfile.TemporaryDirectory() as scratch:
        contenders = {  # name: (program folder, flags, runs folder relative to the program folder)
            **{name: (program_at(commit, Path(scratch) / commit), ["--data-dir", os.path.abspath(args.data_dir)],
                      "runs") for name, commit in {"old": OLD_COMMIT, **commits}.items()},
            "new": (ROOT, ["--data-dir", args.data_dir], out / "speed_runs"),
            **{flags: (ROOT, [*shlex.split(flags), "--data-dir", args.data_dir], out / "speed_runs")
               for flags in args.compare},
        }
        print(f"{OLD_COMMIT}'s default, the new default{' and --compare' if args.compare else ''}, "
              "interleaved:", flush=True)
        runs = time_contenders(contenders, args.rounds)
    for name in ("old", *commits):
        for run in runs[name]:
            del run["run_dir"]  # a temporary folder, gone now
    medians = {name: median_run(name_runs) for name, name_runs in runs.items()}
    old, new = medians["old"], medians["new"]
    eval_images_per_s = evaluation_images_per_second(ROOT / new["run_dir"] / "model.pt", args.data_dir)

    result = {
        "command": shlex.join(["python", "benchmarks/speed.py", *sys.argv[1:]]),
        "machine": machine_description(),
        "commit": git_commit(),
        "reference": reference,
        "old_default": {"commit": OLD_COMMIT, "runs": runs["old"], "median": old},
        "new_default": {"train_args": [], "runs": runs["new"], "median": new,
                        "eval_images_per_s": eval_images_per_s},
        "compared": {flags: {"train_args": shlex.split(flags), "runs": runs[flags], "median": medians[flags],
                             "speedup_over_old_default": (old["wall_clock_seconds"]
                                                          / medians[flags]["wall_clock_seconds"])}
                     for flags in args.compare},
        "compared_commits": {commit: {"runs": runs[name], "median": medians[name],
                                      "speedup_over_old_default": (old["wall_clock_seconds"]
                                                                   / medians[name]["wall_clock_seconds"])}
                             for name, commit in commits.items()},
        "speedup_over_old_default": old["wall_clock_seconds"] / new["wall_clock_seconds"],
        "speedup_over_reference": reference["seconds_15_epochs_scaled"] / new["wall_clock_seconds"],
    }
    save_atomically(result, out / f"{args.name}.json")
    table = markdown_table(result, runs, medians, args.compare, commits)
    data.write_atomically(out / f"{args.name}.md", table.encode())
    print("\n" + table + f"\nWrote {out / (args.name + '.json')} and {out / (args.name + '.md')}")


def markdown_table(result, runs, medians, compared, commits):
    def row(label, name):
        seconds = ", ".join(f"{run['wall_clock_seconds']:.0f}" for run in runs[name])
        accuracies = ", ".join(f"{run['test_accuracy']:.2f}" for run in runs[name])
        precision = ", ".join(sorted({run["precision"] for run in runs[name]}))
        return f"| {label} | {precision} | {seconds} | {medians[name]['wall_clock_seconds']:.0f} | {accuracies} |"

    reference, new = result["reference"], medians["new"]
    phases = ", ".join(f"{phase} {s:.1f} s" for phase, s in new["phase_seconds"].items())
    rows = [f"| reference: PIL `RandomRotation(7)` + `ToTensor` + `Normalize` in a DataLoader (2 workers), "
            f"the seed-style 7,544-parameter net, batch 128, 15 epochs, scaled from "
            f"{reference['timed_batches']} timed batches | fp32 | {reference['seconds_15_epochs_scaled']:.0f} (one) | "
            f"{reference['seconds_15_epochs_scaled']:.0f} | not run |",
            row(f"old default: `python mnist_99_4.py` at commit {OLD_COMMIT}", "old"),
            row("**new default: `python mnist_99_4.py`**", "new"),
            *(row(f"this program with `{flags}`", flags) for flags in compared),
            *(row(f"this program at {name}", name) for name in commits)]
    return "\n".join([
        f"`{result['command']}` ({result['machine']}, commit {result['commit']})", "",
        "| pipeline | precision | runs (s, start to exit) | median | test accuracy (seed 1) |", "|---|---|---|---|---|",
        *rows, "",
        f"New default against the old: **{result['speedup_over_old_default']:.2f}x** (ratio of the medians); "
        f"against the reference: **{result['speedup_over_reference']:.1f}x**. "
        + "".join(f"With `{flags}`: {entry['speedup_over_old_default']:.2f}x the old default. "
                  for flags, entry in result["compared"].items())
        + "".join(f"At commit {commit}: {entry['speedup_over_old_default']:.2f}x the old default. "
                  for commit, entry in result["compared_commits"].items())
        + f"Where the new default's median run spent its time: {phases}.", ""])


if __name__ == "__main__":
    main()
