"""Train a tiny CNN to 99.4% on the real MNIST test set, and use it.

    python mnist_99_4.py                  train the default model (--help: every flag)
    python mnist_99_4.py evaluate         test accuracy, per-class accuracy, confusion matrix
    python mnist_99_4.py predict IMG...   read digits from your own images
    python mnist_99_4.py export --onnx F  write the trained model as ONNX
    python mnist_99_4.py serve            a page to draw a digit on and watch the model read it

Evidence (the commands write the files named; tests/test_evidence.py checks
this text against them and against today's default):

    The default's final test accuracy over seeds 0-9: mean 99.48%, lowest 99.45%, 10 of 10 at 99.4% or more
    (benchmarks/results/default_seeds.md), from
    python benchmarks/seeds.py --seeds 0 1 2 3 4 5 6 7 8 9 --jobs 2 --name default_seeds

    Today's default, batch 128 with the weight average: a median 115 s start to exit (3 runs, 2 CPUs,
    2 threads, torch 2.14.1), 1.44x c766afa's default timed in the same benchmark, and
    0.81x the previous default (commit 1313ca1's program, 93 s, which took 58-60 s in the fourth and
    fifth runs below: a slow day for the machine) (benchmarks/results/speed_batch128_ema/speed.md), from
    python benchmarks/speed.py --out benchmarks/results/speed_batch128_ema --compare-commit 1313ca1

    The previous default (batch 256, no weight average; fingerprint f60455d947b0b41d), timed before it
    changed, five times on CPU and once on a GPU (their commands, run today, time today's default):
    A first run, before the CPU step work: a median 89 s start to exit (3 runs, 2 CPUs, 2 threads, torch 2.14.1),
    1.37x c766afa's default timed in the same benchmark (benchmarks/results/speed.md), from
    python benchmarks/speed.py
    A second run, with three more contenders: a median 71 s start to exit (3 runs, same machine),
    1.90x c766afa's default timed in the same benchmark (benchmarks/results/speed_parts/speed.md), from
    python benchmarks/speed.py --out benchmarks/results/speed_parts --compare '--memory-format contiguous' \
        --compare '--stem pool' --compare '--epochs 15 --plain-epochs 0'
    A third run, with torch.compile as a contender: a median 72 s start to exit (3 runs, same machine),
    1.39x c766afa's default timed in the same benchmark (benchmarks/results/speed_compile/speed.md), from
    python benchmarks/speed.py --out benchmarks/results/speed_compile --compare=--compile
    A fourth run, after the CPU step work: a median 60 s start to exit (3 runs, same machine),
    1.70x c766afa's default timed in the same benchmark (benchmarks/results/speed_steps/speed.md), from
    python benchmarks/speed.py --out benchmarks/results/speed_steps --compare-commit 836f51e \
        --compare-commit f1b3e67
    A fifth run, without the malloc setting that the fourth compared: a median 59 s start to exit
    (3 runs, same machine), 2.66x c766afa's default timed in the same benchmark, whose runs met the
    machine's busiest minutes (benchmarks/results/speed_malloc/speed.md), from
    python benchmarks/speed.py --out benchmarks/results/speed_malloc --compare-commit 5ec0c20 \
        --compare '--elastic 1'
    The machine is shared and noisy: the runs bracket the speed-up, they do not pin it.
    On one H100 GPU (CUDA, bf16, torch 2.11.0): a median 34 s start to exit (3 runs), 17 s of them
    training steps, 1.13x c766afa's default timed in the same benchmark (benchmarks/results/speed_gpu/speed.md),
    from python benchmarks/speed.py --out benchmarks/results/speed_gpu
    (the seed-style reference in that file ran on the machine's 16 CPU cores, not on the GPU).

The whole training set lives on the device as one uint8 tensor (data.py);
each batch is picked by index, moved by a different random affine per image
and normalized there. No per-image Python work in the hot loop, which is what
makes training fast on a plain CPU. The accuracy reported is that of the
final model after the fixed schedule, never the best epoch seen on the test
set. Tune with --val N, which holds N training images out and evaluates on
the test set only once, at the end.
"""
import time

STARTED = time.perf_counter()  # the imports below are part of a run's start-up time

import argparse
import contextlib
import copy
import hashlib
import io
import json
import math
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

import data
import digit_image
from model import (ACTIVATIONS, BODIES, DEFAULT_ACTIVATION, DEFAULT_BODY, DEFAULT_DROPOUT, DEFAULT_STEM,
                   DEFAULT_WIDTH, LATE_POOL, STEMS, THREE_STAGE, Net, conv_count, count_parameters, layout_of,
                   multiply_adds_per_image)

# The default recipe, every value in one place; the model's default layout is
# Net()'s own (model.py), so that `Net()` alone rebuilds the shipped weights.
# The stem, the epochs and the plain epochs were chosen on the validation
# split (benchmarks/results/val_round1.md to val_round3.md: 12 epochs with
# the last 2 plain scored as 15 augmented ones, in four fifths of the time),
# and so were the batch size and the weight average (val_round53.md,
# val_round54.md, paired_round54.md); the other values are common ones for
# small BatchNorm nets, kept from the first version.
DEFAULTS = dict(
    epochs=12,           # of the 15 this project allows itself
    batch_size=128,      # 469 steps an epoch; with ema, +0.05 over batch 256 without it on
                         # validation, 20 seeds paired; 512 scored lower (val_round3)
    max_lr=0.1,          # OneCycle's peak, with Nesterov SGD
    pct_start=0.2,       # fraction of the schedule spent warming up
    momentum=0.9,        # Nesterov momentum, the middle of OneCycle's swing (MOMENTUM_SWING)
    weight_decay=5e-4,   # a common value for small BatchNorm nets
    label_smoothing=0.0,
    rotate=10.0,         # degrees; MNIST digits are written at small slants
    translate=2.0,       # pixels; the digits are centred by mass, not exactly
    scale=0.1,           # +-10% size
    elastic=0.0,         # pixels of smooth random bending (data.smooth_displacement); 0: off
    thickness=0.0,       # random stroke width, a fraction of a 3x3 dilation or erosion (data.random_stroke_width)
    plain_epochs=2,      # the last N epochs see the images as they are, without augmentation
    ema=0.99,            # decay of a moving average of the weights, evaluated and saved; 0: off
    teacher_width=0,     # a wider Net trained alongside on the same batches, distilled; 0: none
    teacher_weights=None,  # or a trained model.pt, frozen, distilled; None: none
    distill_weight=0.5,  # the teacher's share of the loss (Hinton et al., 2015: soft targets)
    distill_temperature=4.0,  # softens both predictions before they are compared; a common value
    width=DEFAULT_WIDTH,
    channels=None,       # the five convs' channels; None: derived from width
    separable=False,     # depthwise + pointwise convs after the first
    stem=DEFAULT_STEM,   # how 28x28 becomes 13x13 (model.stem_layers)
    body=DEFAULT_BODY,   # the four convs after it (model.body_layers)
    activation=DEFAULT_ACTIVATION,  # after every BatchNorm (model.ACTIVATIONS)
    dropout=DEFAULT_DROPOUT,
    bn_momentum=0.1,     # how fast BatchNorm's running statistics follow the batches: PyTorch's default
    seed=1,
    val=0,
    data_dir="./data",
    device="auto",
    precision="auto",
    memory_format="auto",
    threads="auto",
    compile=False,
)

# What does not change the numbers a run produces, so a fingerprint leaves it
# out; the seed and --val are recorded beside the fingerprint, not in it.
NOT_RECIPE = {"seed", "val", "data_dir", "device", "precision", "memory_format", "threads", "compile"}
# Recipe settings added after runs were fingerprinted, and the value that
# means "not used": left out of the fingerprint at that value, so a run made
# before the setting existed keeps its fingerprint (and stays reusable).
ADDED_LATER = {"ema": 0.0, "body": DEFAULT_BODY, "teacher_width": 0, "bn_momentum": 0.1, "elastic": 0.0,
               "thickness": 0.0, "teacher_weights": None, "activation": DEFAULT_ACTIVATION}
# Without a teacher these change nothing, so a fingerprint leaves them out.
DISTILL_SETTINGS = ("distill_weight", "distill_temperature")
TEACHERS = ("teacher_width", "teacher_weights")
# With --resume these may differ from the interrupted run: they change where it runs, not what.
RESUME_MAY_CHANGE = {"device", "data_dir", "memory_format", "threads", "compile"}

# OneCycle moves SGD's momentum against the learning rate: momentum + swing
# while the rate is low, momentum - swing at its peak (0.95 and 0.85 around
# the default 0.9, OneCycleLR's own defaults, which every run so far used).
MOMENTUM_SWING = 0.05

EVAL_BATCH = 500      # no backward pass; benchmarks/speed.py reports the evaluation images/s
DRY_RUN_BATCHES = 3   # --dry-run: this many training batches, one small evaluation


class UsageError(Exception):
    """Bad input: reported as one line, exit code 2."""


# ---------------------------------------------------------------- devices


def pick_device(requested):
    """The device to use: the one asked for if present, else CUDA, MPS or CPU."""
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but PyTorch sees no CUDA GPU here")
    if requested == "mps" and not has_mps:
        raise UsageError("--device mps was asked for, but Apple's MPS is not available here")
    return torch.device(requested)


def pick_precision(requested, device):
    """bfloat16 autocast where the hardware does it natively, else float32."""
    if requested != "auto":
        return requested
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    if device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "bf16"
    return "fp32"


MEMORY_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


def pick_memory_format(requested, device):
    """channels_last on CPU, where oneDNN runs such convolutions directly and the default layout
    takes a slower path (benchmarks/speed.py --compare measures it); the default layout elsewhere."""
    if requested != "auto":
        return requested
    return "channels_last" if device.type == "cpu" else "contiguous"


def pick_threads(requested):
    """CPU threads: as asked, else PyTorch's own choice (OMP_NUM_THREADS, or one per core)."""
    return torch.get_num_threads() if requested == "auto" else int(requested)


def compile_errors():
    """What a failed torch.compile raises (--compile), at the first step rather than at the call.
    Imported only then: torch._dynamo takes a second or two to import."""
    from torch._dynamo.exc import TorchDynamoException
    from torch._inductor.exc import InductorError
    return TorchDynamoException, InductorError


def autocast(device, precision):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


# ---------------------------------------------------------------- train and evaluate


class WeightAverage:
    """An exponential moving average of a model's weights and BatchNorm statistics (--ema DECAY).

    Updated after every optimizer step: average <- decay * average + (1 - decay) * weights,
    so it spans about 1 / (1 - decay) of the last steps. The steps of SGD jitter
    around the minimum; their average sits nearer its middle. With --ema, the
    average is what each epoch evaluates and what the run saves.
    """

    def __init__(self, model, decay):
        self.model = copy.deepcopy(model).eval()
        self.decay = decay
        # state_dict() tensors share storage with the live weights and statistics, which the
        # optimizer and BatchNorm update in place: the pairs stay current. The integer batch
        # counters are not averaged.
        self.pairs = [(averaged, current) for averaged, current in
                      zip(self.model.state_dict().values(), model.state_dict().values())
                      if averaged.is_floating_point()]

    @torch.no_grad()
    def update(self):
        for averaged, current in self.pairs:
            averaged.lerp_(current, 1 - self.decay)


def weight_average(model, args):
    """The run's WeightAverage of the model's weights (--ema DECAY); None with --ema 0."""
    return WeightAverage(model, args.ema) if args.ema else None


def sgd_one_cycle(model, args, steps_per_epoch):
    """The optimizer and learning-rate schedule of the recipe, for the network and for a teacher."""
    optimizer = torch.optim.SGD(model.parameters(), lr=args.max_lr, momentum=args.momentum,
                                nesterov=True, weight_decay=args.weight_decay)
    # round(): 0.9 - 0.05 is 0.8500000000000001 in floating point, and OneCycle's own default is 0.85
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.max_lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch,
        pct_start=args.pct_start, base_momentum=round(args.momentum - MOMENTUM_SWING, 6),
        max_momentum=round(args.momentum + MOMENTUM_SWING, 6))
    return optimizer, scheduler


def forward_loss(model, x, y, args, device):
    """A batch's log-probabilities under the model, and their cross-entropy with the labels."""
    with autocast(device, args.precision):
        log_probs = model(x)
    return log_probs, F.cross_entropy(log_probs.float(), y, label_smoothing=args.label_smoothing)


def descend(loss, optimizer, scheduler):
    """One optimizer step down `loss`, and the learning-rate schedule's step with it."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()


class Teacher:
    """A wider Net trained alongside the network, on the same batches and schedule (--teacher-width W).

    Online distillation: each step the teacher learns from the labels, then
    its softened prediction becomes part of the network's target (see
    distillation_loss), which tells the small network how alike the digit
    classes look, not only which one is right. Its training time counts in
    the run's; only the network is evaluated and saved.
    """

    def __init__(self, args, device, steps_per_epoch):
        self.model = Net(width=args.teacher_width).to(device, memory_format=MEMORY_FORMATS[args.memory_format])
        self.optimizer, self.scheduler = sgd_one_cycle(self.model, args, steps_per_epoch)
        self.description = f"width {args.teacher_width}, trained alongside"

    def begin_epoch(self):
        """Training mode, once an epoch as the network: nothing switches it to eval mode before the end."""
        self.model.train()

    def step(self, x, y, args, device):
        """One training step on the batch; returns the teacher's log-probabilities, detached."""
        log_probs, loss = forward_loss(self.model, x, y, args, device)
        descend(loss, self.optimizer, self.scheduler)
        return log_probs.detach().float()

    def state_dict(self):
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


def teacher_files(teacher_weights):
    """The model.pt files --teacher-weights names, separated by commas; none when it is not given."""
    return [name.strip() for name in teacher_weights.split(",")] if teacher_weights else []


class Ensemble(torch.nn.Module):
    """Several trained networks as one: the log of the mean of their predicted probabilities.

    Networks trained from other seeds or at other widths err on different
    images, so their mean prediction is better than each one's, and a
    better teacher to learn from.
    """

    def __init__(self, members):
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, x):
        log_probs = torch.stack([member(x).float() for member in self.members])
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.members))


class FrozenTeacher:
    """A Net trained before, loaded from its weights and never changed (--teacher-weights model.pt);
    several, separated by commas, teach as one Ensemble.

    Offline distillation: a teacher trained in full gives its finished
    judgement from the first step, where one trained alongside is as unsure
    as the network early on. It only predicts, in evaluation mode (its
    BatchNorm's running statistics, no dropout). Its training is a run of
    its own and its time is not in this run's; for a --val run it must have
    been trained with the same --val, or it has seen the validation images
    (its final accuracy on them, in the log, shows it: near 100%).
    """

    def __init__(self, teacher_weights, device):
        paths = teacher_files(teacher_weights)
        members = [load_trained_model(path, device) for path in paths]
        self.model = members[0] if len(members) == 1 else Ensemble(members).eval()
        self.description = " + ".join(f"{path} (sha256 {file_digest(path)})" for path in paths) + ", frozen"

    def begin_epoch(self):
        pass  # stays in evaluation mode

    @torch.no_grad()
    def step(self, x, y, args, device):
        with autocast(device, args.precision):
            return self.model(x).float()

    def state_dict(self):
        return {}  # nothing changes, so a resumable checkpoint keeps nothing of it

    def load_state_dict(self, state):
        pass


def distillation_loss(log_probs, teacher_log_probs, weight, temperature):
    """KL divergence from the teacher's prediction to the network's, both softened by `temperature`.

    Dividing log-probabilities by T softens them as dividing the logits would
    (they differ by a constant per row); the T^2 keeps the gradient's scale
    as T changes, as in Hinton et al. (2015).
    """
    soft = F.log_softmax(log_probs / temperature, dim=1)
    soft_teacher = F.log_softmax(teacher_log_probs / temperature, dim=1)
    return weight * temperature ** 2 * F.kl_div(soft, soft_teacher, log_target=True, reduction="batchmean")


def augmentation_settings(args):
    """data.training_batches' `augment` (data.random_distortion's settings): how far each image may be
    moved, bent and re-inked."""
    return dict(rotate=args.rotate, translate=args.translate, scale=args.scale, elastic=args.elastic,
                thickness=args.thickness)


def train_one_epoch(model, train_set, optimizer, scheduler, args, device, generator, bar, augment=True,
                    average=None, teacher=None):
    """One pass over the shuffled training set, updating `average` (a WeightAverage) after each step
    and learning from `teacher` (a Teacher or FrozenTeacher) when given; returns mean loss and accuracy (%)."""
    model.train()
    if teacher:
        teacher.begin_epoch()
    augmentation = augmentation_settings(args) if augment else None
    batches = data.training_batches(*train_set, args.batch_size, generator, augmentation,
                                    limit=DRY_RUN_BATCHES if args.dry_run else None)
    loss_sum = torch.zeros((), device=device)  # summed on the device: no host sync per batch
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    memory_format = MEMORY_FORMATS[args.memory_format]
    for step, (x, y) in enumerate(batches):
        x = x.contiguous(memory_format=memory_format)
        log_probs, loss = forward_loss(model, x, y, args, device)
        if teacher:
            loss = (1 - args.distill_weight) * loss + distillation_loss(
                log_probs.float(), teacher.step(x, y, args, device), args.distill_weight,
                args.distill_temperature)
        descend(loss, optimizer, scheduler)
        if average:
            average.update()
        loss_sum += loss.detach() * len(y)
        correct += (log_probs.argmax(1) == y).sum()
        seen += len(y)
        bar.update()
        if step % 20 == 0:  # .item() waits for the device: not every batch
            bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}", acc=f"{100 * correct.item() / seen:.2f}",
                            lr=f"{scheduler.get_last_lr()[0]:.4f}")
    return loss_sum.item() / seen, 100 * correct.item() / seen


@torch.no_grad()
def predict_batches(model, images, device, batch_size=EVAL_BATCH):
    """Log-probabilities (N, 10) for uint8 images (N, 28, 28), in float32."""
    model.eval()
    memory_format = MEMORY_FORMATS[pick_memory_format("auto", device)]
    outputs = [model(data.normalize(images[i:i + batch_size].to(device)).unsqueeze(1)
                     .contiguous(memory_format=memory_format)).float().cpu()
               for i in range(0, len(images), batch_size)]
    return torch.cat(outputs)


def evaluate(model, images, labels, device):
    """Mean loss and accuracy (%) of `model` on a labelled set."""
    log_probs = predict_batches(model, images, device)
    labels = labels.cpu()
    loss = F.nll_loss(log_probs, labels).item()
    accuracy = 100 * (log_probs.argmax(1) == labels).float().mean().item()
    return loss, accuracy


# ---------------------------------------------------------------- what a run is: model, recipe, code


def build_model(args):
    model = Net(width=args.width, dropout=args.dropout, channels=args.channels, separable=args.separable,
                stem=args.stem, body=args.body, activation=args.activation)
    for module in model.modules():  # a training setting, not part of the layout or the weights
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = args.bn_momentum
    return model


def resolved_epochs(args):
    """--epochs as given, else the default schedule (one epoch for --dry-run)."""
    if args.epochs is not None:
        return args.epochs
    return 1 if args.dry_run else DEFAULTS["epochs"]


def resolved_plain_epochs(args, epochs):
    """--plain-epochs as given, else the default, which always leaves the first epoch augmented
    (a --dry-run or --epochs 1 run trains with augmentation)."""
    if args.plain_epochs is not None:
        return args.plain_epochs
    return max(0, min(DEFAULTS["plain_epochs"], epochs - 1))


def fingerprint(args):
    """A short hash of the model's layout and the training recipe: equal fingerprints, same training."""
    recipe = {key: value for key, value in vars(args).items() if key in DEFAULTS and key not in NOT_RECIPE}
    epochs = resolved_epochs(args)
    recipe.update(build_model(args).layout(), width=None,  # the layout names the width
                  epochs=epochs, plain_epochs=resolved_plain_epochs(args, epochs))
    recipe = {key: value for key, value in recipe.items() if ADDED_LATER.get(key, object()) != value}
    if "teacher_weights" in recipe:  # the weights themselves, wherever the file is
        digests = [file_digest(path) for path in teacher_files(recipe["teacher_weights"])]
        recipe["teacher_weights"] = digests[0] if len(digests) == 1 else digests  # one: as before ensembles
    if not any(teacher in recipe for teacher in TEACHERS):
        recipe = {key: value for key, value in recipe.items() if key not in DISTILL_SETTINGS}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def file_digest(path):
    """The first 16 hex digits of a file's SHA-256; None if it cannot be read."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def git_commit():
    """The commit of this program's checkout, '-dirty' if tracked files differ from it; None outside git."""
    try:
        result = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"],
                                cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (result.stdout.strip() or None) if result.returncode == 0 else None


# ---------------------------------------------------------------- output files


class RunLog:
    """Prints a line and appends it to the run's log file.

    A new run starts the file afresh, so a reused --out folder never mixes
    two runs in one log; a resumed run (continue_file=True) adds to it.
    """

    def __init__(self, path, continue_file=False):
        self.path = path
        if not continue_file:
            path.write_text("")

    def __call__(self, message=""):
        tqdm.write(message)
        with open(self.path, "a") as f:
            f.write(message + "\n")


class PhaseTimer:
    """Wall-clock seconds per phase of a run, so the log shows where the time went."""

    def __init__(self, **already):
        self.seconds = dict(already)

    @contextlib.contextmanager
    def __call__(self, phase):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - started


def save_atomically(obj, path):
    """torch.save, or JSON for a .json path, written whole or not at all."""
    path = Path(path)
    if path.suffix == ".json":
        payload = (json.dumps(obj, indent=2) + "\n").encode()
    else:
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        payload = buffer.getvalue()
    data.write_atomically(path, payload)


def new_run_dir():
    stamp = datetime.now().strftime("%Y-%m-%d_%H%M%S")
    path, n = Path("runs") / stamp, 1
    while path.exists():
        n += 1
        path = Path("runs") / f"{stamp}_{n}"
    return path


def writable_output_dir(path):
    """Create the output folder and prove it takes files, before any work starts."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UsageError(f"cannot write to the output folder {path}: {error.strerror or error}") from None
    return path


def model_summary(model):
    """torchsummary's table, run on a CPU copy: it knows only 'cuda' and 'cpu'."""
    from torchsummary import summary  # only a run's log needs it

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        summary(copy.deepcopy(model).cpu().float(), (1, 28, 28), device="cpu")
    return buffer.getvalue().rstrip()


# ---------------------------------------------------------------- the training command


def rng_state(generator, device):
    state = {"torch": torch.get_rng_state(), "generator": generator.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state, generator, device):
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def load_resume_checkpoint(path):
    """The saved state of an interrupted run, or a UsageError saying why not.

    weights_only=True: the state is tensors, numbers, strings and lists, so a
    file that would run code when unpickled is refused, not run.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UsageError(f"--resume {path}: no such file") from None
    except Exception:
        raise UsageError(f"--resume {path}: not a checkpoint written by this program") from None
    if not isinstance(checkpoint, dict) or not {"args", "epoch", "model", "rng"} <= checkpoint.keys():
        raise UsageError(f"--resume {path}: a PyTorch file, but not a training checkpoint of this program")
    return checkpoint


def resumed_args(args, given_flags, checkpoint, log_lines):
    """The interrupted run's settings, with the flags given now that may change; any other is refused."""
    saved = checkpoint["args"]
    for dest in sorted(given_flags - {"resume"}):
        flag = "--" + dest.replace("_", "-")
        if dest in RESUME_MAY_CHANGE:
            log_lines.append(f"Resuming with {flag} {getattr(args, dest)} as asked (the run used "
                             f"{saved.get(dest)}): it changes where the run happens, not its numbers")
        elif dest == "out":
            raise UsageError(f"--resume continues in the checkpoint's own folder; leave out {flag}")
        elif getattr(args, dest) != saved.get(dest):
            raise UsageError(f"--resume: {flag} {getattr(args, dest)} would change the run it continues "
                             f"(trained with {saved.get(dest)}); leave it out")
    kept = {dest: getattr(args, dest) for dest in given_flags & RESUME_MAY_CHANGE}
    # checkpoints written before these flags
    older = {"memory_format": "auto", "threads": "auto", **ADDED_LATER,
             **{key: DEFAULTS[key] for key in DISTILL_SETTINGS}}
    # --compile applies to this process only: a run that failed to compile resumes without it
    return argparse.Namespace(**{**older, **saved, **kept, "compile": args.compile, "resume": args.resume,
                                 "out": str(Path(args.resume).parent)})


def check_layout(args):
    """Refuse a layout Net cannot build (a --channels count or a --stem the --body cannot take)."""
    try:
        build_model(args)
    except ValueError as error:  # Net holds the rules; here they become one line
        raise UsageError(f"--channels/--stem/--body: {error}") from None


def prepare_run(args, given_flags=frozenset()):
    """Settle the arguments, the device and the output folder, refusing bad ones before any work."""
    notes = []
    resume = load_resume_checkpoint(args.resume) if args.resume else None
    if resume:  # the original run's settings and folder: the schedule must not change
        args = resumed_args(args, given_flags, resume, notes)
    args.epochs = resolved_epochs(args)
    args.plain_epochs = resolved_plain_epochs(args, args.epochs)
    if not 0 <= args.val < 60_000:
        raise UsageError(f"--val {args.val}: must be between 0 and 59,999 training images")
    if not 0 <= args.plain_epochs <= args.epochs:
        raise UsageError(f"--plain-epochs {args.plain_epochs}: must be between 0 and --epochs ({args.epochs})")
    check_layout(args)
    if args.teacher_width and args.teacher_weights:
        raise UsageError("--teacher-width and --teacher-weights: one teacher at a time")
    for path in teacher_files(args.teacher_weights):
        try:  # a missing or foreign file is refused here, before any work
            load_trained_model(path, torch.device("cpu"))
        except UsageError as error:
            raise UsageError(f"--teacher-weights {error}") from None
    device = pick_device(args.device)
    args.precision = pick_precision(args.precision, device)
    args.memory_format = pick_memory_format(args.memory_format, device)
    args.threads = pick_threads(args.threads)
    torch.set_num_threads(args.threads)
    args.out = str(writable_output_dir(Path(args.out) if args.out else new_run_dir()))
    return args, device, resume, notes


def load_data(args, device, log):
    """The training set on the device, and the set each epoch is measured on: ("val", the validation
    split) for a --val run, else ("test", the test set).

    A --val run never loads the test set: a run that helps choose a model must not see the
    images that will judge it, not even as a number in its log that nothing was meant to read.
    """
    data.prepare_mnist(args.data_dir, log=log)
    train_set, val_set = data.split_validation(*data.load_mnist(args.data_dir, train=True), args.val)
    eval_name, eval_set = ("val", val_set) if val_set else ("test", data.load_mnist(args.data_dir, train=False))
    if args.dry_run:  # a quick check of the pipeline, not a measurement
        eval_set = tuple(t[:EVAL_BATCH] for t in eval_set)
    return tuple(t.to(device) for t in train_set), eval_name, eval_set


def checkpoint_state(args, epoch, history, seconds, model, average, teacher, optimizer, scheduler, generator,
                     device):
    state = dict(args=vars(args), epoch=epoch, history=history, seconds=seconds,
                 model=model.state_dict(), optimizer=optimizer.state_dict(),
                 scheduler=scheduler.state_dict(), rng=rng_state(generator, device))
    if average:
        state["average"] = average.model.state_dict()
    if teacher:
        state["teacher"] = teacher.state_dict()
    return state


def train_command(args, given_flags=frozenset()):
    timer = PhaseTimer(**{"start-up": time.perf_counter() - STARTED})
    with timer("set-up"):
        args, device, resume, notes = prepare_run(args, given_flags)
        out = Path(args.out)
        log = RunLog(out / "train.log", continue_file=resume is not None)
        torch.manual_seed(args.seed)
        generator = torch.Generator(device=device).manual_seed(args.seed)
        model = build_model(args).to(device, memory_format=MEMORY_FORMATS[args.memory_format])
        log(f"Device: {device} ({args.precision}, {args.memory_format}, {args.threads} thread"
            f"{'s' if args.threads > 1 else ''})   torch {torch.__version__}   output: {out}")
        log(model_summary(model))
        log(f"{count_parameters(model):,} parameters, {multiply_adds_per_image(model):,} multiply-adds per "
            f"image; fingerprint {fingerprint(args)}, commit {git_commit()}")
        for note in notes:
            log(note)

    with timer("data"):
        train_set, eval_name, eval_set = load_data(args, device, log)
    log(f"Training on {len(train_set[0]):,} images, evaluating each epoch on {len(eval_set[0]):,} "
        f"({eval_name}); {args.epochs} epochs, batch {args.batch_size}, seed {args.seed}")
    if args.ema:  # what the test columns and the saved model are
        log(f"Evaluated and saved: a moving average of the weights (--ema {args.ema})")

    with timer("set-up"):  # torch.optim's first use imports torch._dynamo: about 2 s on a CPU
        steps_per_epoch = math.ceil(len(train_set[0]) / args.batch_size)
        optimizer, scheduler = sgd_one_cycle(model, args, steps_per_epoch)
        average = weight_average(model, args)
        teacher = (Teacher(args, device, steps_per_epoch) if args.teacher_width
                   else FrozenTeacher(args.teacher_weights, device) if args.teacher_weights else None)
        if teacher:
            log(f"Teacher: {count_parameters(teacher.model):,} parameters, {teacher.description}; "
                f"distillation weight {args.distill_weight}, temperature {args.distill_temperature}")
        evaluated = average.model if average else model  # what each epoch measures and the run saves
        # The compiled module shares the model's weights; the model itself is what is saved.
        stepped = torch.compile(model) if args.compile else model

    history, seconds_before, start_epoch = [], 0.0, 1
    if resume:
        model.load_state_dict(resume["model"])
        if average:
            average.model.load_state_dict(resume["average"])
        if teacher:
            teacher.load_state_dict(resume["teacher"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        set_rng_state(resume["rng"], generator, device)
        history, seconds_before, start_epoch = resume["history"], resume["seconds"], resume["epoch"]
        log(f"Resumed from {args.resume} at epoch {start_epoch}")

    checkpoint_path = out / "checkpoint.pt"
    log(f"{'epoch':>5} {'train loss':>10} {'train acc':>9} {eval_name + ' loss':>10} "
        f"{eval_name + ' acc':>9} {'seconds':>8}")
    started = time.perf_counter()
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, args.epochs + 1):
            # The state before each epoch: Ctrl-C or a crash resumes from here exactly.
            elapsed = seconds_before + time.perf_counter() - started
            with timer("saving"):
                save_atomically(checkpoint_state(args, epoch, history, elapsed, model, average, teacher,
                                                 optimizer, scheduler, generator, device), checkpoint_path)
            with timer("training steps"), tqdm(
                    desc=f"epoch {epoch:2d}/{args.epochs}", leave=False, unit="batch", file=sys.stderr,
                    total=DRY_RUN_BATCHES if args.dry_run else steps_per_epoch) as bar:
                augment = epoch <= args.epochs - args.plain_epochs
                train_loss, train_acc = train_one_epoch(stepped, train_set, optimizer, scheduler, args,
                                                        device, generator, bar, augment, average, teacher)
            with timer("evaluation"):
                eval_loss, eval_acc = evaluate(evaluated, *eval_set, device)
            elapsed = seconds_before + time.perf_counter() - started
            history.append({"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc,
                            f"{eval_name}_loss": eval_loss, f"{eval_name}_accuracy": eval_acc,
                            "lr": scheduler.get_last_lr()[0], "seconds": elapsed})
            log(f"{epoch:5d} {train_loss:10.4f} {train_acc:9.2f} {eval_loss:10.4f} {eval_acc:9.2f} "
                f"{elapsed:8.1f}")
    except Exception as error:  # --compile: e.g. no C++ compiler for inductor's CPU kernels
        if not (args.compile and isinstance(error, compile_errors())):
            raise
        raise UsageError(f"--compile: torch.compile failed here ({type(error).__name__}); train without "
                         f"it, or resume without it: python mnist_99_4.py --resume {checkpoint_path}") from None
    except KeyboardInterrupt:
        log(f"\nInterrupted in epoch {epoch}. The state before that epoch is saved; continue with:\n"
            f"  python mnist_99_4.py --resume {checkpoint_path}")
        return 130

    seconds = seconds_before + time.perf_counter() - started
    teacher_accuracy = None
    if teacher:  # a distillation is only as good as its teacher: show how good it got
        with timer("evaluation"):
            teacher_accuracy = evaluate(teacher.model, *eval_set, device)[1]
        log(f"Teacher's final {eval_name} accuracy: {teacher_accuracy:.2f}%")
    finish_run(args, evaluated, device, history, seconds, eval_name, log, timer, teacher_accuracy)
    checkpoint_path.unlink(missing_ok=True)  # the run is complete: model.pt is the result
    return 0


def finish_run(args, model, device, history, seconds, eval_name, log, timer, teacher_accuracy=None):
    """Save the final model's weights, metrics and curves.

    The last epoch's line already measured this final model on the evaluation set: the test set,
    or for a --val run the validation split (the test set is then left for the model chosen).
    """
    out = Path(args.out)
    accuracy, loss = history[-1][f"{eval_name}_accuracy"], history[-1][f"{eval_name}_loss"]
    params = count_parameters(model)
    metrics = {f"{eval_name}_accuracy": accuracy, f"{eval_name}_loss": loss, "params": params,
               "multiply_adds": multiply_adds_per_image(model), "seconds": seconds, "epochs": args.epochs,
               "width": model.width, "layout": model.layout(), "fingerprint": fingerprint(args),
               "commit": git_commit(), "device": str(device), "precision": args.precision,
               "memory_format": args.memory_format, "threads": args.threads, "torch": torch.__version__,
               "dry_run": args.dry_run,
               "args": {k: v for k, v in vars(args).items() if k != "command"}, "history": history}
    what = "validation" if eval_name == "val" else "test"
    summary_line = f"Final model after {args.epochs} epochs ({params:,} parameters, {seconds:.1f} s): " \
                   f"{what} accuracy {accuracy:.2f}%"
    if teacher_accuracy is not None:
        metrics[f"teacher_{eval_name}_accuracy"] = teacher_accuracy
    with timer("saving"):
        import plots  # matplotlib is slow to import and only this last step draws

        save_atomically(model.state_dict(), out / "model.pt")
        plots.plot_training_curves(history, out / "curves.png", eval_name)
    # The phases of this process: a resumed run's earlier epochs are in "seconds" but not here.
    metrics["phase_seconds"] = {phase: round(s, 2) for phase, s in timer.seconds.items()}
    metrics["phase_seconds"]["total"] = round(time.perf_counter() - STARTED, 2)
    save_atomically(metrics, out / "metrics.json")
    log(summary_line)
    log("Where the time went: " + ", ".join(f"{phase} {s:.1f} s" for phase, s in metrics["phase_seconds"].items()))
    log(f"Saved {out / 'model.pt'}, {out / 'metrics.json'}, {out / 'train.log'}, {out / 'curves.png'}")
    if eval_name == "val":
        log(f"The test set was not used. Once this is the model chosen, measure it there: "
            f"python mnist_99_4.py evaluate --checkpoint {out / 'model.pt'}")


# ---------------------------------------------------------------- using a trained model


SHIPPED_WEIGHTS = Path(__file__).resolve().parent / "mnist_net.pt"


def shown_path(path):
    """`path` relative to the working directory where it can be, so nothing prints this machine's layout."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def load_trained_model(path, device):
    """A Net with the weights of `path`: a state_dict (model.pt) or a training checkpoint.

    The layout is read off the weights, so a model trained with any --width,
    --channels, --separable, --stem or --body loads. Anything else is refused with a
    message that says what it is.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise UsageError(f"{path}: not a PyTorch checkpoint (torch.load cannot read it)") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a resumable training checkpoint
    try:
        layout = layout_of(state)
    except (AttributeError, TypeError, ValueError):  # not a dict of tensors
        layout = None
    if not layout or len(layout["channels"]) != conv_count(layout["body"]):
        raise UsageError(f"{path}: a PyTorch file, but not the weights of this project's Net")
    try:
        model = Net(**layout)
        model.load_state_dict(state)
    except (RuntimeError, ValueError):
        raise UsageError(f"{path}: the weights of a different architecture than model.Net "
                         f"(channels {layout['channels']}); was it trained with another version?") from None
    return model.to(device, memory_format=MEMORY_FORMATS[pick_memory_format("auto", device)]).eval()


def evaluate_command(args):
    device = pick_device(args.device)
    model = load_trained_model(args.checkpoint, device)
    data.prepare_mnist(args.data_dir)
    images, labels = data.load_mnist(args.data_dir, train=False)
    log_probs = predict_batches(model, images, device)
    predicted = log_probs.argmax(1)
    confusion = torch.zeros(10, 10, dtype=torch.long)
    confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    accuracy = 100 * (predicted == labels).float().mean().item()

    print(f"{args.checkpoint}: {count_parameters(model):,} parameters, channels {model.channels}, "
          f"activation {model.activation}")
    print(f"Test accuracy: {accuracy:.2f}% ({int((predicted == labels).sum()):,} of {len(labels):,})")
    print("Per class:  " + "  ".join(f"{d}: {100 * confusion[d, d] / confusion[d].sum():.2f}%"
                                     for d in range(10)))
    print("Confusion matrix (rows: true digit, columns: predicted):")
    print("      " + "".join(f"{d:>6}" for d in range(10)))
    for d in range(10):
        print(f"{d:>6}" + "".join(f"{int(c):>6}" for c in confusion[d]))
    if args.confusion_png:
        import plots
        plots.plot_confusion_matrix(confusion, args.confusion_png)
        print(f"Wrote {args.confusion_png}")
    if args.errors_png:
        import plots
        wrong = (predicted != labels).nonzero().flatten()[:args.max_errors]
        confidence = log_probs[wrong].exp().max(1).values
        plots.plot_misclassified(images[wrong], labels[wrong], predicted[wrong], confidence, args.errors_png)
        print(f"Wrote {args.errors_png} ({len(wrong)} of {int((predicted != labels).sum())} errors)")
    return 0


def seen_image_path(path):
    """Where --show-crop writes what the model saw: beside the input, photo.jpg -> photo.seen.png."""
    path = Path(path)
    return path.with_name(path.stem + ".seen.png")


def digit_probabilities(model, digit, device):
    """The ten probabilities for one 28x28 uint8 digit from digit_image: predict and serve share it."""
    with torch.no_grad():
        return predict_batches(model, torch.from_numpy(digit)[None], device)[0].exp()


def predict_command(args):
    device = pick_device(args.device)
    model = load_trained_model(args.checkpoint, device)
    failures = 0
    for path in args.images:
        try:
            digit = digit_image.load_digit(path)
        except (OSError, ValueError) as error:  # missing, unreadable, not an image, no ink
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            print(f"{path}: error: {reason}", file=sys.stderr)
            failures += 1
            continue
        probs = digit_probabilities(model, digit, device)
        top = probs.topk(args.top_k)
        line = f"{path}: " + ", ".join(f"{int(d)} ({100 * p:.1f}%)" for p, d in zip(top.values, top.indices))
        if args.show_crop:
            seen_path = seen_image_path(path)
            data.write_atomically(seen_path, digit_image.png_bytes(digit))
            line += f"   (the model saw {seen_path})"
        print(line)
    return 1 if failures else 0


def serve_command(args):
    import server  # the web page's imports are only paid for by `serve`

    device = pick_device(args.device)
    model = load_trained_model(args.checkpoint, device)
    try:
        web = server.make_server(lambda digit: digit_probabilities(model, digit, device).tolist(),
                                 args.host, args.port)
    except OSError as error:  # port taken, address not on this machine
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}") from None
    print(f"Reading digits with {shown_path(args.checkpoint)} on {device}. Open {server.address(web)} "
          "in a browser; Ctrl-C stops.", flush=True)
    try:
        web.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped")
    finally:
        web.server_close()
    return 0


def export_command(args):
    # The default layout: ONNX has no memory formats, and tracing channels_last weights pins the batch size.
    model = load_trained_model(args.checkpoint, torch.device("cpu")).to(memory_format=torch.contiguous_format)
    example = data.normalize(torch.zeros(1, 1, 28, 28, dtype=torch.uint8))
    onnx_program = torch.onnx.export(model, (example,), input_names=["image"], output_names=["log_probs"],
                                     dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, dynamo=True,
                                     verbose=False)
    data.write_atomically(args.onnx, onnx_program.model_proto.SerializeToString())
    print(f"Wrote {args.onnx}: input 'image' (N, 1, 28, 28) float, normalized as model.py says; "
          f"output 'log_probs' (N, 10)")
    return 0


# ---------------------------------------------------------------- command line


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument gets one line, not the usage block; no abbreviated flags."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def non_negative_float(text):
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive number, not {text}")
    return value


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, not {text}")
    return value


def thread_count(text):
    return text if text == "auto" else positive_int(text)


def port_number(text):
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535, not {text}")
    return value


def probability(text):
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, not {text}")
    return value


def swinging_momentum(text):
    value = float(text)
    if not MOMENTUM_SWING <= value < 1 - MOMENTUM_SWING:
        raise argparse.ArgumentTypeError(f"must be at least {MOMENTUM_SWING} and below {1 - MOMENTUM_SWING} "
                                         f"(OneCycle moves it {MOMENTUM_SWING} either way), not {text}")
    return value


def channel_list(text):
    try:
        channels = [int(part) for part in text.split(",")]
    except ValueError:
        channels = []
    if len(channels) not in {conv_count(body) for body in BODIES} or min(channels) <= 0:
        raise argparse.ArgumentTypeError(f"must be five (nine for --body {THREE_STAGE}) positive integers "
                                         f"separated by commas, not {text}")
    return channels


def shared_flags():
    """The flags several commands take, each defined once, as argparse parent parsers."""
    device = OneLineParser(add_help=False)
    device.add_argument("--device", default=DEFAULTS["device"], choices=["auto", "cpu", "cuda", "mps"],
                        help="auto picks CUDA, then Apple MPS, then CPU (default: auto)")
    data_dir = OneLineParser(add_help=False)
    data_dir.add_argument("--data-dir", default=DEFAULTS["data_dir"], metavar="DIR",
                          help=f"where MNIST is kept, fetched if missing (default: {DEFAULTS['data_dir']})")
    checkpoint = OneLineParser(add_help=False)
    checkpoint.add_argument("--checkpoint", default=shown_path(SHIPPED_WEIGHTS), metavar="PATH",
                            help="trained weights, a model.pt of a run (default: the shipped mnist_net.pt)")
    return device, data_dir, checkpoint


def add_train_arguments(parser):
    d = DEFAULTS
    parser.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                        help=f"training epochs, the fixed schedule (default: {d['epochs']}, "
                             "or 1 with --dry-run)")
    parser.add_argument("--batch-size", type=positive_int, default=d["batch_size"], metavar="N",
                        help=f"training batch size (default: {d['batch_size']})")
    parser.add_argument("--max-lr", type=float, default=d["max_lr"], metavar="LR",
                        help=f"OneCycleLR peak learning rate (default: {d['max_lr']})")
    parser.add_argument("--pct-start", type=float, default=d["pct_start"], metavar="F",
                        help=f"fraction of the schedule spent warming up (default: {d['pct_start']})")
    parser.add_argument("--momentum", type=swinging_momentum, default=d["momentum"], metavar="M",
                        help=f"SGD Nesterov momentum: OneCycle runs it at M+{MOMENTUM_SWING} while the "
                             f"learning rate is low and M-{MOMENTUM_SWING} at its peak (default: {d['momentum']})")
    parser.add_argument("--weight-decay", type=float, default=d["weight_decay"], metavar="WD",
                        help=f"SGD weight decay (default: {d['weight_decay']})")
    parser.add_argument("--label-smoothing", type=float, default=d["label_smoothing"], metavar="S",
                        help=f"label smoothing of the loss (default: {d['label_smoothing']})")
    parser.add_argument("--rotate", type=float, default=d["rotate"], metavar="DEG",
                        help=f"random rotation, +- degrees (default: {d['rotate']})")
    parser.add_argument("--translate", type=float, default=d["translate"], metavar="PX",
                        help=f"random shift, +- pixels (default: {d['translate']})")
    parser.add_argument("--scale", type=float, default=d["scale"], metavar="F",
                        help=f"random zoom, +- fraction (default: {d['scale']})")
    parser.add_argument("--elastic", type=non_negative_float, default=d["elastic"], metavar="PX",
                        help="bend each image by a smooth random displacement of up to about PX pixels, "
                             "an elastic distortion (default: 0, off)")
    parser.add_argument("--thickness", type=probability, default=d["thickness"], metavar="F",
                        help="make each image's strokes thicker or thinner by up to F of a 3x3 dilation or "
                             "erosion (default: 0, off)")
    parser.add_argument("--plain-epochs", type=int, default=None, metavar="N",
                        help=f"train the last N epochs without augmentation (default: {d['plain_epochs']}, "
                             "fewer in a shorter run, never all of it)")
    parser.add_argument("--ema", type=probability, default=d["ema"], metavar="DECAY",
                        help="evaluate and save a moving average of the weights, updated each step "
                             f"with this decay (default: {d['ema']}; 0: off)")
    parser.add_argument("--teacher-width", type=non_negative_int, default=d["teacher_width"], metavar="W",
                        help="train a default Net of width W alongside, on the same batches, and distill "
                             "its predictions into the network (default: 0, none)")
    parser.add_argument("--teacher-weights", default=d["teacher_weights"], metavar="MODEL_PT",
                        help="distill a network trained before (its model.pt), frozen, into this one; several, "
                             "A.pt,B.pt, teach as one ensemble of their mean prediction; for a --val run, "
                             "ones trained with the same --val (default: none)")
    parser.add_argument("--distill-weight", type=probability, default=d["distill_weight"], metavar="A",
                        help="with a teacher: the teacher's share of the loss "
                             f"(default: {d['distill_weight']})")
    parser.add_argument("--distill-temperature", type=positive_float, default=d["distill_temperature"], metavar="T",
                        help="with a teacher: how much both predictions are softened before they "
                             f"are compared (default: {d['distill_temperature']})")
    parser.add_argument("--width", type=positive_int, default=d["width"], metavar="W",
                        help=f"channel width of the network (default: {d['width']})")
    parser.add_argument("--channels", type=channel_list, default=d["channels"], metavar="C1,...,C5",
                        help=f"the five convs' channels (nine with --body {THREE_STAGE}), overriding --width "
                             "(default: from --width)")
    parser.add_argument("--separable", action="store_true",
                        help="depthwise + pointwise convs after the first (default: full 3x3 convs)")
    parser.add_argument("--stem", default=d["stem"], choices=STEMS,
                        help="28x28 to 13x13: conv, BatchNorm, ReLU, max-pool; conv, max-pool, BatchNorm, "
                             f"ReLU; or a stride-2 conv (default: {d['stem']})")
    parser.add_argument("--body", default=d["body"], choices=BODIES,
                        help="the four convs after the stem: unpadded (13x13 to 5x5), or padded with a "
                             f"second max-pool (13x13, then 6x6); or {THREE_STAGE}: no stem, nine padded convs, "
                             f"three each at 28x28, 14x14 and 7x7; or {LATE_POOL}: no stem, the five unpadded convs "
                             f"with the max-pool after the second (26, 24 -> 12, 10, 8, 6) (default: {d['body']})")
    parser.add_argument("--activation", default=d["activation"], choices=ACTIVATIONS,
                        help="what follows every BatchNorm: ReLU, or the smooth SiLU or GELU, which pass a "
                             f"little of a negative input on (default: {d['activation']})")
    parser.add_argument("--dropout", type=probability, default=d["dropout"], metavar="P",
                        help=f"dropout rate on the last feature map (default: {d['dropout']})")
    parser.add_argument("--bn-momentum", type=probability, default=d["bn_momentum"], metavar="M",
                        help="weight of each batch in BatchNorm's running statistics, which evaluation "
                             f"uses (default: {d['bn_momentum']})")
    parser.add_argument("--seed", type=int, default=d["seed"], metavar="S",
                        help=f"random seed (default: {d['seed']})")
    parser.add_argument("--val", type=int, default=d["val"], metavar="N",
                        help="hold N training images out as a validation set for tuning: each epoch is measured "
                             "on it, and the test set is not loaded at all (default: 0)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output folder for weights, log, metrics (default: a new folder in runs/)")
    parser.add_argument("--precision", default=d["precision"], choices=["auto", "fp32", "bf16"],
                        help="bf16 autocast where the hardware supports it natively (default: auto)")
    parser.add_argument("--memory-format", default=d["memory_format"], choices=["auto", *MEMORY_FORMATS],
                        help="tensor layout for the convolutions; auto: channels_last on CPU (default: auto)")
    parser.add_argument("--threads", type=thread_count, default=d["threads"], metavar="N",
                        help="CPU threads; auto: PyTorch's choice, OMP_NUM_THREADS or one per core "
                             "(default: auto)")
    parser.add_argument("--compile", action="store_true",
                        help="train through torch.compile: fused kernels, after a compilation of a minute "
                             "or so at the start (default: off)")
    parser.add_argument("--resume", default=None, metavar="CHECKPOINT",
                        help="continue an interrupted run from its checkpoint.pt (only --device, --data-dir, "
                             "--memory-format, --threads and --compile may be given with it)")
    parser.add_argument("--dry-run", action="store_true",
                        help=f"{DRY_RUN_BATCHES} batches of one epoch end to end, to check the set-up")


def build_parser():
    """The whole command line; `parser.commands` maps each command to its own parser."""
    device, data_dir, checkpoint = shared_flags()
    parser = OneLineParser(description="Train a tiny CNN to 99.4% on MNIST, and use it.")
    subparsers = parser.add_subparsers(dest="command", metavar="{train,evaluate,predict,serve,export}")
    parser.commands = {}

    def command(name, help_text, parents, **kwargs):
        parser.commands[name] = subparsers.add_parser(name, help=help_text, description=help_text,
                                                      parents=parents, **kwargs)
        return parser.commands[name]

    train = command("train", "train the model (the default command: 'train' may be left out)", [device, data_dir],
                    epilog="Other commands: evaluate, predict, serve, export; "
                           "'python mnist_99_4.py COMMAND --help' for each.")
    add_train_arguments(train)

    evaluate = command("evaluate", "test accuracy, per-class accuracy, confusion matrix",
                       [checkpoint, device, data_dir])
    evaluate.add_argument("--confusion-png", metavar="PNG", help="also draw the confusion matrix here")
    evaluate.add_argument("--errors-png", metavar="PNG", help="also draw misclassified digits here")
    evaluate.add_argument("--max-errors", type=positive_int, default=64, metavar="N",
                          help="at most this many digits in --errors-png (default: 64)")

    predict = command("predict", "read the digit in each image file", [checkpoint, device])
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, ... of any size")
    predict.add_argument("--top-k", type=int, default=1, choices=range(1, 11), metavar="K",
                         help="show the K likeliest digits (default: 1)")
    predict.add_argument("--show-crop", action="store_true",
                         help="write the 28x28 image the model saw beside each input, as NAME.seen.png")

    serve = command("serve", "a web page to draw a digit on and watch the model read it", [checkpoint, device])
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=port_number, default=8000,
                       help="port to listen on; 0 picks a free one (default: 8000)")

    export = command("export", "write the trained model as ONNX", [checkpoint])
    export.add_argument("--onnx", required=True, metavar="PATH", help="the .onnx file to write")
    return parser


def given_flags(parser, argv):
    """The destinations of the flags written on the command line (exact: abbreviations are off)."""
    actions = parser._option_string_actions
    return {actions[token.split("=")[0]].dest for token in argv
            if token.startswith("--") and token.split("=")[0] in actions}


COMMANDS = {"train": train_command, "evaluate": evaluate_command,
            "predict": predict_command, "serve": serve_command, "export": export_command}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv in (["-h"], ["--help"]):
        argv = ["train", "--help"]  # the training flags, which is what a newcomer wants to see
    elif not argv or argv[0] not in COMMANDS:
        argv = ["train"] + argv  # training is the default command
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return train_command(args, given_flags(parser.commands["train"], argv[1:]))
        return COMMANDS[args.command](args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except data.DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # outside the training loop, which saves its own state
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
