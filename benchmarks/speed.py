"""Time the default training run against a reference pipeline in the seed projects' style.

    python benchmarks/speed.py

All three run here, one after the other, on the same machine:

- reference: the usual course-project pipeline. torchvision PIL transforms per
  image (RandomRotation(7), ToTensor, Normalize) in a DataLoader with 2 workers,
  batch 128, SGD with Nesterov momentum and OneCycleLR, 15 epochs, float32,
  evaluating the test set after every epoch. The network is the seed
  projects' kind: 7,544 parameters, 3x3 convs each followed by ReLU, BatchNorm
  and Dropout 0.05, a 1x1 transition before the max-pool, a padded last conv,
  global average pooling and a 1x1 head (`SeedStyleNet` below). Only part of
  an epoch is timed (--reference-batches); the 15-epoch time is scaled from it.
- the same reference pipeline with this project's default Net instead, so the
  share of the speed-up that the data path alone buys is visible too.
- default: `python mnist_99_4.py` exactly as a user runs it, timed from start
  to exit (start-up, data loading, training, evaluation and saving included).

Prints the three times, the speed-ups, the final accuracy, and images per second for
training and evaluation; writes the same to benchmarks/results/speed.json.
"""
import argparse
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


def time_default_run(out):
    """Wall-clock seconds of `python mnist_99_4.py --out OUT`, start to exit, and its metrics."""
    started = time.perf_counter()
    metrics = run_training(out)
    return time.perf_counter() - started, metrics


def evaluation_images_per_second(model_path, data_dir, repeats=3):
    model = mnist_99_4.load_trained_model(model_path, torch.device("cpu"))
    images, _ = data.load_mnist(data_dir, train=False)
    mnist_99_4.predict_batches(model, images, torch.device("cpu"))  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        mnist_99_4.predict_batches(model, images, torch.device("cpu"))
    return repeats * len(images) / (time.perf_counter() - started)


def time_reference_pipeline(name, model, data_dir, timed_batches):
    """The reference pipeline's scaled 15-epoch time for `model`, printed and returned as a dict."""
    print(f"Reference pipeline, {name}: timing {timed_batches} training batches and one test pass...",
          flush=True)
    train_seconds, test_seconds = time_reference(model, data_dir, timed_batches)
    total = REFERENCE["epochs"] * (train_seconds + test_seconds)
    print(f"  {train_seconds:.1f} s per training epoch + {test_seconds:.1f} s per test pass "
          f"-> {total:.0f} s for {REFERENCE['epochs']} epochs", flush=True)
    return {"network": name, "params": count_parameters(model),
            "seconds_15_epochs_scaled": total, "train_seconds_per_epoch": train_seconds,
            "test_seconds_per_pass": test_seconds, "timed_batches": timed_batches,
            "train_images_per_s": 60_000 / train_seconds, "eval_images_per_s": 10_000 / test_seconds,
            **REFERENCE}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-batches", type=int, default=100,
                        help="reference training batches to time, of 469 an epoch (default: 100)")
    parser.add_argument("--data-dir", default=str(ROOT / "data"), help="MNIST folder (default: data)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"),
                        help="folder for speed.json and the default run (default: benchmarks/results)")
    args = parser.parse_args()
    out = Path(args.out)
    data.prepare_mnist(args.data_dir)

    reference = time_reference_pipeline("seed-style 7,544-parameter net", SeedStyleNet(), args.data_dir,
                                        args.reference_batches)
    same_net = time_reference_pipeline("this project's default Net", Net(), args.data_dir,
                                       args.reference_batches)

    print("Default run: python mnist_99_4.py ...", flush=True)
    wall_clock, metrics = time_default_run(out / "speed_default_run")
    train_images_per_s = 60_000 * metrics["epochs"] / metrics["seconds"]
    eval_images_per_s = evaluation_images_per_second(out / "speed_default_run" / "model.pt", args.data_dir)

    result = {
        "command": "python benchmarks/speed.py " + " ".join(sys.argv[1:]),
        "machine": f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}",
        "reference": reference,
        "reference_pipeline_with_default_net": same_net,
        "default": {"wall_clock_seconds": wall_clock, "training_loop_seconds": metrics["seconds"],
                    "epochs": metrics["epochs"], "test_accuracy": metrics["test_accuracy"],
                    "params": metrics["params"], "device": metrics["device"],
                    "precision": metrics["precision"], "train_images_per_s": train_images_per_s,
                    "eval_images_per_s": eval_images_per_s},
        "speedup": reference["seconds_15_epochs_scaled"] / wall_clock,
        "speedup_same_net": same_net["seconds_15_epochs_scaled"] / wall_clock,
    }
    mnist_99_4.save_atomically(result, out / "speed.json")

    def row(name, ref):
        return (f"| {name} | {ref['seconds_15_epochs_scaled']:.0f} s | {ref['train_images_per_s']:,.0f} | "
                f"{ref['eval_images_per_s']:,.0f} | not run |")

    print(f"""
| pipeline | time for the full run | train images/s | eval images/s | final test accuracy |
|---|---|---|---|---|
{row("reference: PIL + DataLoader, seed-style net, 15 epochs (scaled)", reference)}
{row("the same pipeline with this project's Net (scaled)", same_net)}
| default (`python mnist_99_4.py`, {metrics['epochs']} epochs) | {wall_clock:.0f} s | {train_images_per_s:,.0f} | {eval_images_per_s:,.0f} | {metrics['test_accuracy']:.2f}% |

Speed-up over the reference: {result['speedup']:.1f}x   (over the same pipeline with this Net: \
{result['speedup_same_net']:.1f}x)   wrote {out / 'speed.json'}""")


if __name__ == "__main__":
    main()
