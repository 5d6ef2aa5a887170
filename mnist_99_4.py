"""Train a tiny CNN (model.py, 7,142 parameters) to 99.4% on the real MNIST test set, and use it.

    python mnist_99_4.py                  train the default model (--help: every flag)
    python mnist_99_4.py evaluate         test accuracy; also predict, serve and export (use.py)

Evidence for today's default (tests/test_evidence.py checks these lines against the files named):
    Final test accuracy over seeds 0-9, fp32: mean 99.48%, lowest 99.38%, 9 of 10 at 99.4% or more
    (benchmarks/results/default_seeds.md; in bf16, default_seeds_bf16.md), from
    python benchmarks/seeds.py --commit bb89870 --seeds 0 1 2 3 4 5 6 7 8 9 --jobs 2 --name default_seeds --precision fp32
    A median 44 s start to exit on 2 CPU cores with AMX, in bf16 (3 runs, 2 threads, torch 2.14.1), 1.37x
    c766afa's default timed in the same benchmark (benchmarks/results/speed/speed.md), from
    python benchmarks/speed.py --out benchmarks/results/speed --compare-commit 1313ca1 --compare '--precision fp32'
"""
import time

STARTED = time.perf_counter()  # the imports below are part of a run's start-up time

import argparse
import copy
import math
import os
import signal
import sys
from pathlib import Path

# Ctrl-C while torch loads (a second or two) ends quietly, not in a traceback (unless Ctrl-C is ignored,
# as it is for a job started in the background, which keeps it so). It ends at once: nothing is computed
# yet, and an exception raised inside an import can be caught there (numpy's lazy attributes), leaving a
# module half loaded that fails later in a traceback.
QUIET_START = __name__ == "__main__" and signal.getsignal(signal.SIGINT) is signal.default_int_handler
if QUIET_START:
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))
import torch
import torch.nn.functional as F
from tqdm import tqdm

import data
import distill
import runs
import use
from model import ACTIVATIONS, DEFAULT_ACTIVATION, DEFAULT_DROPOUT, DEFAULT_STEM, DEFAULT_WIDTH, STEMS, Net, \
    channel_widths, count_parameters, multiply_adds_per_image
from cli import OneLineParser, UsageError, channel_list, no_such_command, number, thread_count

if QUIET_START:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on Ctrl-C is a KeyboardInterrupt


def setting(default, help=None, kind=None, metavar=None, choices=None):
    """One setting of a run, declared once: its default and, when it has `help`, its flag (type `kind`).
    A setting with no help has no flag: it is fixed, and recorded with every run all the same."""
    return dict(default=default, help=help, type=kind, metavar=metavar, choices=choices)


positive = number(int, 1)
# Today's recipe and how a run happens, every setting declared once. The network's own defaults are
# Net()'s (model.py), so that `Net()` alone rebuilds the shipped weights. Chosen on the validation split
# unless a comment says otherwise; benchmarks/RESEARCH.md has every round's table and command.
SETTINGS = dict(
    # with the last 2 plain, as good as 15 augmented epochs in four fifths of the time
    epochs=setting(12, "training epochs, the fixed schedule; 1 with --dry-run", positive, "N"),
    # 469 steps an epoch; with the weight average, +0.05 over batch 256 (20 seeds, paired)
    batch_size=setting(128, "training batch size", positive, "N"),
    max_lr=setting(0.1, "OneCycle's peak learning rate, with Nesterov SGD", number(float, 0, positive=True), "LR"),
    pct_start=setting(0.2),     # the fraction of the schedule spent warming up
    momentum=setting(0.9),      # Nesterov: OneCycle swings it from 0.95 (low rate) to 0.85 (peak rate)
    weight_decay=setting(5e-4),  # a common value for small BatchNorm nets, kept from the first version
    # 8; first picked on the test table, then checked on validation (RESEARCH.md, "The width")
    width=setting(DEFAULT_WIDTH, "channel width of the network: W, 1.25W, 2W, 2W, 2W", positive, "W"),
    channels=setting(None, "the five convs' channels, overriding --width", channel_list, "C1,...,C5"),
    # pool-first: conv, max-pool, then BatchNorm and ReLU at 13x13: a quarter of the element-wise work
    stem=setting(DEFAULT_STEM, "28x28 to 13x13, model.py", choices=STEMS),
    activation=setting(DEFAULT_ACTIVATION, "what follows every BatchNorm", choices=ACTIVATIONS),
    dropout=setting(DEFAULT_DROPOUT, "dropout rate on the last feature map", number(float, 0, 1), "P"),
    rotate=setting(10.0, "random rotation, +- degrees", number(float, 0), "DEG"),  # digits slant a little
    translate=setting(2.0, "random shift, +- pixels", number(float, 0), "PX"),  # centred by mass, not exactly
    scale=setting(0.1, "random zoom, +- fraction", number(float, 0, 1), "F"),
    # the last epochs see the images as they are, as the test set is: never all of them
    plain_epochs=setting(2, "train the last N epochs without augmentation", number(int, 0), "N"),
    # about the last 100 steps' weights, evaluated and saved: their average sits nearer the minimum
    ema=setting(0.99, "evaluate and save a moving average of the weights, this decay a step; 0: off",
                number(float, 0, 1), "DECAY"),
    teacher_weights=setting(None, "learn also from a trained network (its model.pt), frozen; A.pt,B.pt: "
                            "from their mean prediction; for a --val run, ones trained with the same --val",
                            metavar="MODEL_PT"),
    distill_weight=setting(0.5),       # the teacher's share of the loss (Hinton et al., 2015)
    distill_temperature=setting(4.0),  # softens both predictions before they are compared; a common value
    seed=setting(1, "random seed", int, "S"),
    val=setting(0, "hold N training images out as a validation set for tuning: each epoch is measured on "
                "it, and the test set is not loaded at all", int, "N"),
    data_dir=setting("./data", "where MNIST is kept, fetched if missing", metavar="DIR"),
    device=setting("auto", "auto picks CUDA, then Apple MPS, then CPU", choices=["auto", "cpu", "cuda", "mps"]),
    precision=setting("auto", "bf16 autocast where the hardware supports it natively",
                      choices=["auto", "fp32", "bf16"]),
    threads=setting("auto", "CPU threads; auto: OMP_NUM_THREADS or one per core", thread_count, "N"),
)
DEFAULTS = {name: declared["default"] for name, declared in SETTINGS.items()}
SCHEDULE = {"epochs", "plain_epochs"}  # their flags default to None: with_schedule settles them
# Where and how a run happens, not what it computes: a fingerprint leaves these out.
NOT_RECIPE = {"seed", "val", "data_dir", "device", "precision", "threads", "out", "resume", "command"}
# With --resume these may differ from the interrupted run: they change where it runs, not what.
RESUME_MAY_CHANGE = {"device", "data_dir", "threads"}
DRY_RUN_BATCHES = 3   # --dry-run: this many training batches, one small evaluation


# ---------------------------------------------------------------- training


class WeightAverage:
    """An exponential moving average of a model's weights and BatchNorm statistics (--ema DECAY).

    Updated after every optimizer step: average <- decay * average + (1 - decay) * weights.
    The steps of SGD jitter around the minimum; their average sits nearer its middle.
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


def sgd_one_cycle(model, args, steps_per_epoch):
    """Nesterov SGD under OneCycle: the rate warms up to --max-lr, then anneals to almost zero."""
    optimizer = torch.optim.SGD(model.parameters(), lr=args.max_lr, momentum=args.momentum,
                                nesterov=True, weight_decay=args.weight_decay)
    # round(): 0.9 - 0.05 is 0.8500000000000001 in floating point, and OneCycle's own default is 0.85
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.max_lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch,
        pct_start=args.pct_start, base_momentum=round(args.momentum - 0.05, 6),
        max_momentum=round(args.momentum + 0.05, 6))
    return optimizer, scheduler


def train_step(model, x, y, optimizer, scheduler, args, average=None, teacher=None):
    """One optimizer step on a batch; returns the batch's log-probabilities and loss (not synced)."""
    with use.autocast(x.device, args.precision):
        log_probs = model(x)
    loss = F.cross_entropy(log_probs.float(), y)
    if teacher is not None:
        with torch.no_grad(), use.autocast(x.device, args.precision):
            teacher_log_probs = teacher(x).float()
        loss = (1 - args.distill_weight) * loss + distill.distillation_loss(
            log_probs.float(), teacher_log_probs, args.distill_weight, args.distill_temperature)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    if average:
        average.update()
    return log_probs, loss


def train_one_epoch(model, train_set, optimizer, scheduler, args, generator, bar, augment=True, average=None,
                    teacher=None):
    """One pass over the shuffled training set; returns mean loss and accuracy (%)."""
    model.train()
    augmentation = dict(rotate=args.rotate, translate=args.translate, scale=args.scale) if augment else None
    batches = data.training_batches(*train_set, args.batch_size, generator, augmentation,
                                    limit=DRY_RUN_BATCHES if args.dry_run else None)
    device = train_set[0].device
    loss_sum = torch.zeros((), device=device)  # summed on the device: no host sync per batch
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for step, (x, y) in enumerate(batches):
        x = x.contiguous(memory_format=use.memory_format(device))
        log_probs, loss = train_step(model, x, y, optimizer, scheduler, args, average, teacher)
        loss_sum += loss.detach() * len(y)
        correct += (log_probs.argmax(1) == y).sum()
        seen += len(y)
        bar.update()
        if step % 20 == 0:  # .item() waits for the device: not every batch
            bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}", acc=f"{100 * correct.item() / seen:.2f}",
                            lr=f"{scheduler.get_last_lr()[0]:.4f}")
    return loss_sum.item() / seen, 100 * correct.item() / seen


def build_model(args):
    return Net(width=args.width, dropout=args.dropout, channels=args.channels, stem=args.stem,
               activation=args.activation)


def recipe_fingerprint(settings):
    """runs.fingerprint of what decides a run's numbers: its settings (vars(args) once the schedule is
    settled, or a recorded run's metrics["args"]) less NOT_RECIPE, the network as its five channel counts,
    and a teacher as its weights' digests. It builds nothing and draws no random number."""
    recipe = {key: value for key, value in settings.items() if key not in NOT_RECIPE}
    width = recipe.pop("width", None)  # it names the channels, unless --channels overrides it
    recipe["channels"] = list(recipe.get("channels") or channel_widths(width))
    if recipe.get("teacher_weights"):  # the weights themselves, wherever the file is
        recipe["teacher_weights"] = [runs.file_digest(p) for p in distill.teacher_files(recipe["teacher_weights"])]
    return runs.fingerprint(recipe)


def fingerprint(train_args):
    """The fingerprint a run with these training flags records (benchmarks/seeds.py asks every program)."""
    return recipe_fingerprint(vars(with_schedule(build_parser().parse_args(["train", *train_args]))))


def with_schedule(args):
    """`args` with --epochs and --plain-epochs settled: as given, else the defaults (one epoch for
    --dry-run; the plain epochs always leave the first epoch augmented)."""
    epochs = args.epochs or (1 if args.dry_run else DEFAULTS["epochs"])
    plain = args.plain_epochs if args.plain_epochs is not None else max(0, min(DEFAULTS["plain_epochs"], epochs - 1))
    return argparse.Namespace(**{**vars(args), "epochs": epochs, "plain_epochs": plain})


def prepare_run(args, given_flags=frozenset()):
    """Settle the arguments, the device and the output folder, refusing bad ones before any work."""
    notes = []
    resume = runs.load_resume_checkpoint(args.resume) if args.resume else None
    if resume:  # the original run's settings and folder: the schedule must not change
        args = runs.resumed_settings(args, given_flags, resume, RESUME_MAY_CHANGE, notes)
    args = with_schedule(args)
    if not 0 <= args.val < 60_000:
        raise UsageError(f"--val {args.val}: must be between 0 and 59,999 training images")
    if not 0 <= args.plain_epochs <= args.epochs:
        raise UsageError(f"--plain-epochs {args.plain_epochs}: must be between 0 and --epochs ({args.epochs})")
    # A missing or foreign teacher file is refused here, before any work.
    distill.load_teacher(args.teacher_weights, lambda path: use.load_trained_model(path, torch.device("cpu")))
    device = use.pick_device(args.device)
    args.precision = use.pick_precision(args.precision, device)
    args.threads = torch.get_num_threads() if args.threads == "auto" else args.threads
    torch.set_num_threads(args.threads)
    args.out = str(runs.output_folder(args.out, resuming=resume is not None, dry_run=args.dry_run))
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
        eval_set = tuple(t[:use.EVAL_BATCH] for t in eval_set)
    return tuple(t.to(device) for t in train_set), eval_name, eval_set


def train(args, given_flags=frozenset()):
    """The training command: a run from --seed (or --resume) to its saved model and metrics."""
    timer = runs.PhaseTimer(**{"start-up": time.perf_counter() - STARTED})
    with timer("set-up"):
        args, device, resume, notes = prepare_run(args, given_flags)
        out = Path(args.out)
        log = runs.RunLog(out / "train.log", continue_file=resume is not None)
        torch.manual_seed(args.seed)
        generator = torch.Generator(device=device).manual_seed(args.seed)
        model = build_model(args).to(device, memory_format=use.memory_format(device))
        log(f"Device: {device} ({args.precision}, {args.threads} thread{'s' if args.threads > 1 else ''})   "
            f"torch {torch.__version__}   output: {out}")
        log(runs.model_summary(model))
        fingerprint, commit = recipe_fingerprint(vars(args)), runs.git_commit()
        log(f"{count_parameters(model):,} parameters, {multiply_adds_per_image(model):,} multiply-adds per "
            f"image; fingerprint {fingerprint}, commit {commit}")

    with timer("data"):
        train_set, eval_name, eval_set = load_data(args, device, log)
    log(f"Training on {len(train_set[0]):,} images, evaluating each epoch on {len(eval_set[0]):,} "
        f"({eval_name}); {args.epochs} epochs, batch {args.batch_size}, seed {args.seed}")
    if args.ema:
        log(f"Evaluated and saved: a moving average of the weights (--ema {args.ema})")

    with timer("set-up"):  # torch.optim's first use imports torch._dynamo: about 2 s on a CPU
        steps_per_epoch = math.ceil(len(train_set[0]) / args.batch_size)
        optimizer, scheduler = sgd_one_cycle(model, args, steps_per_epoch)
        average = WeightAverage(model, args.ema) if args.ema else None
        teacher = distill.load_teacher(args.teacher_weights, lambda path: use.load_trained_model(path, device))
        if teacher is not None:
            log(f"Teacher: {count_parameters(teacher):,} parameters, {args.teacher_weights} (sha256 "
                f"{', '.join(runs.file_digest(p) for p in distill.teacher_files(args.teacher_weights))}), "
                f"frozen; distillation weight {args.distill_weight}, temperature {args.distill_temperature}")
        evaluated = average.model if average else model  # what each epoch measures and the run saves

    history, seconds_before, start_epoch = [], 0.0, 1
    if resume:
        history, seconds_before, start_epoch = runs.restore_checkpoint(
            resume, model, average, optimizer, scheduler, generator, device, notes, args.resume)
        log.forget_epochs_from(start_epoch)
        for note in notes:
            log(note)
        log(f"Resumed from {args.resume} at epoch {start_epoch}")

    checkpoint_path = out / "checkpoint.pt"
    log(f"{'epoch':>5} {'train loss':>10} {'train acc':>9} {eval_name + ' loss':>10} "
        f"{eval_name + ' acc':>9} {'seconds':>8}")
    started = time.perf_counter()
    epoch, saving, saved = start_epoch, False, start_epoch if resume else None  # saved: the checkpoint's epoch
    try:
        for epoch in range(start_epoch, args.epochs + 1):
            # The state before each epoch: Ctrl-C or a crash resumes from here exactly.
            elapsed = seconds_before + time.perf_counter() - started
            with timer("saving"):
                runs.save_checkpoint(checkpoint_path, args, epoch, history, elapsed, model, average, optimizer,
                                     scheduler, generator, device)
            saved = epoch
            with timer("training steps"), tqdm(
                    desc=f"epoch {epoch:2d}/{args.epochs}", leave=False, unit="batch", file=sys.stderr,
                    total=DRY_RUN_BATCHES if args.dry_run else steps_per_epoch) as bar:
                augment = epoch <= args.epochs - args.plain_epochs
                train_loss, train_acc = train_one_epoch(model, train_set, optimizer, scheduler, args,
                                                        generator, bar, augment, average, teacher)
            with timer("evaluation"):
                eval_loss, eval_acc = use.evaluate(evaluated, *eval_set, device)
            elapsed = seconds_before + time.perf_counter() - started
            history.append({"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc,
                            f"{eval_name}_loss": eval_loss, f"{eval_name}_accuracy": eval_acc,
                            "lr": scheduler.get_last_lr()[0], "seconds": elapsed})
            log(f"{epoch:5d} {train_loss:10.4f} {train_acc:9.2f} {eval_loss:10.4f} {eval_acc:9.2f} "
                f"{elapsed:8.1f}")
        saving = True  # the checkpoint before the last epoch is kept until the results are saved
        metrics = {"fingerprint": fingerprint, "commit": commit,
                   "seconds": seconds_before + time.perf_counter() - started}
        if teacher is not None:  # a distillation is only as good as its teacher: show how good it is
            with timer("evaluation"):
                metrics[f"teacher_{eval_name}_accuracy"] = use.evaluate(teacher, *eval_set, device)[1]
            log(f"Teacher's {eval_name} accuracy: {metrics[f'teacher_{eval_name}_accuracy']:.2f}%")
        runs.finish_run(args, evaluated, device, history, eval_name, metrics, log, timer, STARTED)
    except (KeyboardInterrupt, OSError) as error:  # Ctrl-C, or a full or read-only disk
        disk = isinstance(error, OSError)  # its message is one line, and stays out of a log it may not write
        stopped = f"error: cannot write {error.filename or out} ({error.strerror or error})" if disk else "\nInterrupted"
        go_on = (" " if disk else "\n  ") + f"python mnist_99_4.py --resume {checkpoint_path}"
        message = f"{stopped} {'while saving the results' if saving else f'in epoch {epoch}'}. " + (
            f"The state before epoch {saved} is saved; continue with:{go_on}" if saved
            else "Nothing was saved yet.")
        if disk:
            print(message, file=sys.stderr)
        else:
            log(message)
        return 1 if disk else 130
    checkpoint_path.unlink(missing_ok=True)  # the run is complete: model.pt is the result
    return 0


# ---------------------------------------------------------------- command line

COMMANDS = {"train": train, **use.COMMANDS}  # every command; train is the default one


def add_setting(parser, name):
    """The flag of SETTINGS[name], with its default in its help."""
    declared = SETTINGS[name]
    default = declared["default"]
    parser.add_argument("--" + name.replace("_", "-"), default=None if name in SCHEDULE else default,
                        type=declared["type"], metavar=declared["metavar"], choices=declared["choices"],
                        help=f"{declared['help']} (default: {'none' if default is None else default})")


def add_train_arguments(parser):
    for name, declared in SETTINGS.items():
        if declared["help"] and name not in {"device", "data_dir"}:  # those two every command shares
            add_setting(parser, name)
    parser.add_argument("--out", metavar="DIR", help="output folder (default: a new folder in runs/)")
    parser.add_argument("--resume", metavar="CHECKPOINT", help="continue an interrupted run from "
                        "its checkpoint.pt (with --device, --data-dir, --threads only)")
    parser.add_argument("--dry-run", action="store_true",
                        help=f"{DRY_RUN_BATCHES} batches of one epoch end to end: a check of the pipeline")
    # The settings with no flag are fixed, and recorded with every run all the same.
    parser.set_defaults(**{name: fixed["default"] for name, fixed in SETTINGS.items() if not fixed["help"]})


def build_parser():
    """The whole command line, every command registered here; `parser.commands` maps each to its parser."""
    device, data_dir = OneLineParser(add_help=False), OneLineParser(add_help=False)
    add_setting(device, "device")
    add_setting(data_dir, "data_dir")
    parser = OneLineParser(description="Train a tiny CNN to 99.4% on MNIST, and use it.")
    subparsers = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    parser.commands = {}

    def command(name, help_text, parents):
        parser.commands[name] = subparsers.add_parser(name, help=help_text, description=help_text,
                                                      parents=parents)
        return parser.commands[name]

    add_train_arguments(command("train", "train the model (the default command: 'train' may be left out)",
                                [device, data_dir]))
    parser.commands["train"].epilog = (f"Other commands: {', '.join(use.COMMANDS)}; "
                                       "'python mnist_99_4.py COMMAND --help' for each.")
    use.add_commands(command, device, data_dir)
    return parser


def given_flags(parser, argv):
    """The destinations of the flags written on the command line (exact: abbreviations are off)."""
    actions = parser._option_string_actions
    return {actions[token.split("=")[0]].dest for token in argv
            if token.startswith("--") and token.split("=")[0] in actions}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv in (["-h"], ["--help"]):
        argv = ["train", "--help"]  # the training flags, which is what a newcomer wants to see
    elif not argv or argv[0] not in COMMANDS:
        argv = ["train"] + argv  # training is the default command
    try:
        if argv[0] == "train" and argv[1:] and not argv[1].startswith("-"):  # training takes flags, not words
            raise no_such_command(argv[1], list(COMMANDS))
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command == "train":
            return train(args, given_flags(parser.commands["train"], argv[1:]))
        return COMMANDS[args.command](args)
    except (UsageError, data.DataError) as error:  # 2: bad arguments, 1: data that cannot be had
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, UsageError) else 1
    except KeyboardInterrupt:  # outside the training loop, which saves its own state
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the output's reader stopped (`predict *.png | head`): end quietly, as `ls` does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the flush at exit cannot fail too
        return 1
    finally:
        runs.release_folders()  # once this run has ended, another may use its folder


if __name__ == "__main__":
    sys.exit(main())
