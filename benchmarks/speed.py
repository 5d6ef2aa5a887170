"""Time the default training run against the previous default recipe and a seed-style pipeline.

    python benchmarks/speed.py               # about 10 minutes on a 2-core CPU: run it on a quiet machine

Three pipelines, all timed in this one run, on the same machine:

- old recipe: the default of commit c766afa (width 8, 15 epochs, batch 256,
  max lr 0.1), spelled out as flags (RECIPES below) and run by this program.
- new default: `python mnist_99_4.py` exactly as a user runs it.
  Both are timed from start to exit, --rounds times each, interleaved (old,
  new, new, old, old, new), and compared by the ratio of their medians: on a
  shared machine two runs of identical code can differ by a third.
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
import shlex
import sys
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
import mnist_99_4  # noqa: E402
from model import Net, count_parameters  # noqa: E402
from seeds import run_training  # noqa: E402  (this folder is on the path when run as a script)

REFERENCE = dict(epochs=15, batch_size=128, max_lr=0.02, workers=2, rotation=7, test_batch=1000)

# The default recipe of commit c766afa, every training flag spelled out, so a
# later change of the defaults cannot change what "old" means. It runs on this
# program, so it shares the newer start-up savings: the ratio it gives is the
# recipe's and layout's gain alone, the conservative figure.
RECIPES = {
    "old": ["--width", "8", "--dropout", "0.1", "--stem", "pool", "--epochs", "15", "--batch-size", "256",
            "--max-lr", "0.1", "--pct-start", "0.2", "--momentum", "0.9", "--weight-decay", "5e-4",
            "--label-smoothing", "0", "--rotate", "10", "--translate", "2", "--scale", "0.1",
            "--plain-epochs", "0"],
    "new": [],  # python mnist_99_4.py as a user runs it
}


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


def time_run(run_dir, train_args):
    """Wall-clock seconds of `python mnist_99_4.py ARGS --out RUN_DIR`, start to exit, and its metrics."""
    started = time.perf_counter()
    metrics = run_training(run_dir, *train_args)
    return time.perf_counter() - started, metrics


def evaluation_images_per_second(model_path, data_dir, repeats=3):
    model = mnist_99_4.load_trained_model(model_path, torch.device("cpu"))
    images, _ = data.load_mnist(data_dir, train=False)
    mnist_99_4.predict_batches(model, images, torch.device("cpu"))  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        mnist_99_4.predict_batches(model, images, torch.device("cpu"))
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


def time_recipes(out, rounds):
    """Time the old recipe and the new default, interleaved (old, new, new, old, old, new, ...).

    A shared machine drifts by tens of percent over minutes; interleaving puts
    both sides through the same drift, and the medians shrug off one slow run.
    """
    order = [("old", "new"), ("new", "old")]
    runs = {"old": [], "new": []}
    for i in range(rounds):
        for name in order[i % 2]:
            train_args = [*RECIPES[name], "--seed", "1"]
            seconds, metrics = time_run(out / "speed_runs" / f"{name}_{i}", train_args)
            print(f"  {name} run {i}: {seconds:.1f} s start to exit, test {metrics['test_accuracy']:.2f}%",
                  flush=True)
            runs[name].append({"wall_clock_seconds": seconds, "test_accuracy": metrics["test_accuracy"],
                               "training_loop_seconds": metrics["seconds"], "epochs": metrics["epochs"],
                               "params": metrics["params"], "phase_seconds": metrics["phase_seconds"],
                               "run_dir": str(out / "speed_runs" / f"{name}_{i}")})
    return runs


def median_run(runs):
    """The run with the median wall-clock time (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda run: run["wall_clock_seconds"])
    return ordered[(len(ordered) - 1) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each recipe, interleaved (default: 3)")
    parser.add_argument("--reference-batches", type=int, default=100,
                        help="reference training batches to time, of 469 an epoch (default: 100)")
    parser.add_argument("--data-dir", default="data", help="MNIST folder (default: data)")
    parser.add_argument("--out", default="benchmarks/results",
                        help="folder for speed.json, speed.md and the runs (default: benchmarks/results)")
    args = parser.parse_args()
    out = Path(args.out)
    data.prepare_mnist(args.data_dir)

    reference = time_reference_pipeline(SeedStyleNet(), args.data_dir, args.reference_batches)
    print(f"Old recipe ({' '.join(RECIPES['old'])}) and new default, interleaved:", flush=True)
    runs = time_recipes(out, args.rounds)
    old, new = median_run(runs["old"]), median_run(runs["new"])
    eval_images_per_s = evaluation_images_per_second(Path(new["run_dir"]) / "model.pt", args.data_dir)

    result = {
        "command": shlex.join(["python", "benchmarks/speed.py", *sys.argv[1:]]),
        "machine": f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}",
        "commit": mnist_99_4.git_commit(),
        "reference": reference,
        "old_recipe": {"train_args": RECIPES["old"], "runs": runs["old"], "median": old},
        "new_default": {"train_args": RECIPES["new"], "runs": runs["new"], "median": new,
                        "eval_images_per_s": eval_images_per_s},
        "speedup_over_old_recipe": old["wall_clock_seconds"] / new["wall_clock_seconds"],
        "speedup_over_reference": reference["seconds_15_epochs_scaled"] / new["wall_clock_seconds"],
    }
    mnist_99_4.save_atomically(result, out / "speed.json")

    def seconds(runs):
        return ", ".join(f"{run['wall_clock_seconds']:.0f}" for run in runs)

    def accuracies(runs):
        return ", ".join(f"{run['test_accuracy']:.2f}" for run in runs)

    table = f"""`{result['command']}` ({result['machine']})

| pipeline | runs (s, start to exit) | median | test accuracy (seed 1) |
|---|---|---|---|
| reference: PIL `RandomRotation(7)` + `ToTensor` + `Normalize` in a DataLoader (2 workers), the seed-style 7,544-parameter net, batch 128, fp32, 15 epochs, scaled from {reference['timed_batches']} timed batches | {reference['seconds_15_epochs_scaled']:.0f} (one) | {reference['seconds_15_epochs_scaled']:.0f} | not run |
| old recipe (c766afa's default): `{' '.join(RECIPES['old'])}` | {seconds(runs['old'])} | {old['wall_clock_seconds']:.0f} | {accuracies(runs['old'])} |
| new default: `python mnist_99_4.py` | {seconds(runs['new'])} | **{new['wall_clock_seconds']:.0f}** | {accuracies(runs['new'])} |

New default against the old recipe: **{result['speedup_over_old_recipe']:.2f}x** (ratio of the medians); \
against the reference: **{result['speedup_over_reference']:.1f}x**. Where the new default's median run spent \
its time: {', '.join(f"{phase} {s:.1f} s" for phase, s in new['phase_seconds'].items())}.
"""
    data.write_atomically(out / "speed.md", table.encode())
    print("\n" + table + f"\nWrote {out / 'speed.json'} and {out / 'speed.md'}")


if __name__ == "__main__":
    main()
