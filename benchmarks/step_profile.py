"""Where a training step's time goes: the program's own step under torch.profiler, op by op.

    python benchmarks/step_profile.py                       # the default's step, on this machine
    python benchmarks/step_profile.py --channels 8,10,12,12,12   # any training flags
    python benchmarks/step_profile.py --batchnorm-layouts   # also each BatchNorm alone, in both layouts

A run's log ends with its phases (start-up, data, training steps, ...); this
opens the biggest one. It trains a few dozen steps of real, augmented MNIST
batches with the program's own train_step (forward, loss, backward, optimizer
and the weight average's update) on data.training_batches, prints the
milliseconds a step, then the ops that took the most time, each with the
shapes of its inputs. --batchnorm-layouts then times each of the network's
BatchNorm layers alone, forward and backward, on a batch in channels_last
and in the default layout: the measurement behind model.LayoutBatchNorm2d.
"""
import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
import mnist_99_4  # noqa: E402
import use  # noqa: E402


def training_steps(args, device):
    """A function that runs one training step of the program on its next augmented batch."""
    model = mnist_99_4.build_model(args).to(device, memory_format=use.memory_format(device))
    model.train()
    (images, labels), _, _ = mnist_99_4.load_data(args, device, log=lambda *_: None)  # as a run loads it
    optimizer, scheduler = mnist_99_4.sgd_one_cycle(model, args, steps_per_epoch=len(images) // args.batch_size)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    augmentation = dict(rotate=args.rotate, translate=args.translate, scale=args.scale)
    batches = data.training_batches(images, labels, args.batch_size, generator, augmentation)
    average = mnist_99_4.WeightAverage(model, args.ema) if args.ema else None  # updated each step, as a run's

    def step():
        x, y = next(batches)
        mnist_99_4.train_step(model, x.contiguous(memory_format=use.memory_format(device)), y, optimizer,
                              scheduler, args, average)
    return model, step


def milliseconds_per_step(step, steps, device, warmup=5):
    for _ in range(warmup):  # the first steps pick kernels and grow the allocator
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - started) / steps * 1000


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def batchnorm_inputs(model, batch_size, device, memory_format):
    """The input shape of each BatchNorm of the model, for a batch of this size."""
    shapes = []
    hooks = [module.register_forward_hook(lambda module, inputs, output: shapes.append(tuple(inputs[0].shape)))
             for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    with torch.no_grad():
        model(torch.zeros(batch_size, 1, 28, 28, device=device).contiguous(memory_format=memory_format))
    for hook in hooks:
        hook.remove()
    return shapes


def batchnorm_milliseconds(shape, memory_format, device, repeats=30):
    """Forward plus backward of a plain nn.BatchNorm2d on a random batch of this shape and layout."""
    norm = nn.BatchNorm2d(shape[1]).to(device)
    x = torch.randn(shape, device=device).contiguous(memory_format=memory_format).requires_grad_()
    gradient = torch.randn(shape, device=device).contiguous(memory_format=memory_format)
    for _ in range(3):
        norm(x).backward(gradient)
    synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        norm(x).backward(gradient)
    synchronize(device)
    return (time.perf_counter() - started) / repeats * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="steps timed, and as many profiled (default: 30)")
    parser.add_argument("--rows", type=int, default=20, help="ops listed (default: 20)")
    parser.add_argument("--batchnorm-layouts", action="store_true",
                        help="also time each BatchNorm alone in channels_last and in the default layout")
    own, train_flags = parser.parse_known_args()
    args = mnist_99_4.with_schedule(mnist_99_4.build_parser().parse_args(["train", *train_flags]))
    device = use.pick_device(args.device)
    args.precision = use.pick_precision(args.precision, device)
    if args.threads != "auto":
        torch.set_num_threads(args.threads)

    model, step = training_steps(args, device)
    print(f"{device} ({args.precision}, {torch.get_num_threads()} threads), "
          f"batch {args.batch_size}, torch {torch.__version__}")
    print(f"{milliseconds_per_step(step, own.steps, device):.1f} ms a training step "
          f"(mean of {own.steps}, augmentation and optimizer included)\n")
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as profiler:
        for _ in range(own.steps):
            step()
    print(profiler.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total",
                                                                  row_limit=own.rows, max_name_column_width=36,
                                                                  max_shapes_column_width=60))
    if own.batchnorm_layouts:
        print("nn.BatchNorm2d alone, forward + backward, ms:\n")
        print("| input shape | channels_last | default layout |\n|---|---|---|")
        for shape in batchnorm_inputs(model, args.batch_size, device,
                                      use.memory_format(device)):
            last, default = (batchnorm_milliseconds(shape, layout, device)
                             for layout in (torch.channels_last, torch.contiguous_format))
            print(f"| {list(shape)} | {last:.2f} | {default:.2f} |")


if __name__ == "__main__":
    main()
