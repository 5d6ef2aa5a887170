"""On a CUDA GPU, training steps must not wait for the device (skipped where there is none).

A step that reads a value back (`.item()`, `.cpu()`, a Python `if` on a
tensor) makes the CPU wait for the GPU to finish everything queued, so the
next step's kernels cannot be queued while this one runs. For a network this
small the GPU's work per step is shorter than the CPU's time to launch it,
so one such wait a step would roughly double a run.
"""
import warnings

import pytest
import torch
from tqdm import tqdm

import mnist_99_4

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

STEPS = 60
PROGRESS_EVERY = 20  # train_one_epoch reads the running loss back this often, for the progress bar


def synchronizations_in_one_epoch(flags):
    """How many times one training epoch of STEPS batches waited for the GPU."""
    args = mnist_99_4.build_parser().commands["train"].parse_args(["--device", "cuda", "--batch-size", "16",
                                                                    *flags])
    args, device, _, _ = mnist_99_4.prepare_run(args)
    images = torch.randint(0, 256, (16 * STEPS, 28, 28), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 10, (16 * STEPS,), device=device)
    model = mnist_99_4.build_model(args).to(device)
    optimizer, scheduler = mnist_99_4.sgd_one_cycle(model, args, STEPS)
    average = mnist_99_4.WeightAverage(model, args.ema) if args.ema else None
    generator = torch.Generator(device=device).manual_seed(0)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught, tqdm(disable=True) as bar:
            warnings.simplefilter("always")
            mnist_99_4.train_one_epoch(model, (images, labels), optimizer, scheduler, args, generator, bar,
                                       average=average)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchronizing" in str(warning.message) for warning in caught)


@pytest.mark.parametrize("flags", [[], ["--ema", "0"]], ids=["default", "no-ema"])
def test_a_training_epoch_waits_for_the_gpu_only_for_the_progress_bar(flags, tmp_path):
    # Two reads (loss and accuracy) every PROGRESS_EVERY steps and at the end; not one a step.
    allowed = 2 * (STEPS // PROGRESS_EVERY + 1)
    assert synchronizations_in_one_epoch([*flags, "--out", str(tmp_path)]) <= allowed
