"""Train a tiny CNN (model.py, 7,142 parameters) to 99.4% on the real MNIST test set, and use it.

    python mnist_99_4.py                  train the default model (--help: every flag)
    python mnist_99_4.py evaluate         test accuracy; also predict, serve and export (use.py)

Evidence for today's default (tests/test_evidence.py checks these lines against the files named):
    Final test accuracy over seeds 0-9: mean 99.48%, lowest 99.45%, 10 of 10 at 99.4% or more
    (benchmarks/results/default_seeds.md), from
    python benchmarks/seeds.py --seeds 0 1 2 3 4 5 6 7 8 9 --jobs 2 --name default_seeds
    A median 115 s start to exit on 2 CPU cores (3 runs, 2 threads, torch 2.14.1), 1.44x c766afa's
    default timed in the same benchmark (benchmarks/results/speed_batch128_ema/speed.md), from
    python benchmarks/speed.py --out benchmarks/results/speed_batch128_ema --compare-commit 1313ca1
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
# as it is for a job started in the background, which keeps it so)
QUIET_START = __name__ == "__main__" and signal.getsignal(signal.SIGINT) is signal.default_int_handler
if QUIET_START:
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
import torch
import torch.nn.functional as F
from tqdm import tqdm

import data
import distill
import runs
import use
from model import ACTIVATIONS, DEFAULT_ACTIVATION, DEFAULT_DROPOUT, DEFAULT_STEM, DEFAULT_WIDTH, STEMS, Net, \
    count_parameters, multiply_adds_per_image
from cli import OneLineParser, UsageError, channel_list, no_such_command, number, thread_count

if QUIET_START:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on Ctrl-C is a KeyboardInterrupt

# Today's recipe, every value in one place. The network's own defaults are Net()'s (model.py), so
# that `Net()` alone rebuilds the shipped weights. Chosen on the validation split unless a comment
# says otherwise; benchmarks/RESEARCH.md has every round's table and command.
DEFAULTS = dict(
    epochs=12,           # with the last 2 plain, as good as 15 augmented ones in four fifths of the time
    batch_size=128,      # 469 steps an epoch; with the weight average, +0.05 over batch 256 (20 seeds, paired)
    max_lr=0.1,          # OneCycle's peak, with Nesterov SGD
    pct_start=0.2,       # fraction of the schedule spent warming up
    momentum=0.9,        # Nesterov momentum: OneCycle swings it from 0.95 (low rate) to 0.85 (peak rate)
    weight_decay=5e-4,   # a common value for small BatchNorm nets, kept from the first version
    rotate=10.0,         # degrees; MNIST digits are written at small slants
    translate=2.0,       # pixels; the digits are centred by mass, not exactly
    scale=0.1,           # +-10% size
    plain_epochs=2,      # the last N epochs see the images as they are: the test set is not distorted
    ema=0.99,            # a moving average of the weights (about the last 100 steps), evaluated and saved
    teacher_weights=None,     # a trained model.pt to learn from (distill.py); the taught points use it
    distill_weight=0.5,       # the teacher's share of the loss (Hinton et al., 2015)
    distill_temperature=4.0,  # softens both predictions before they are compared; a common value
    width=DEFAULT_WIDTH,      # 8; first picked on the test table, then checked on validation
    channels=None,       # the five convs' channels; None: derived from width
    stem=DEFAULT_STEM,   # pool-first: conv, max-pool, then BatchNorm and ReLU at 13x13
    activation=DEFAULT_ACTIVATION,
    dropout=DEFAULT_DROPOUT,
    seed=1,
    val=0,
    data_dir="./data",
    device="auto",
    precision="auto",
    threads="auto",
)
# Where and how a run happens, not what it computes: a fingerprint leaves these out.
NOT_RECIPE = {"seed", "val", "data_dir", "device", "precision", "threads"}
# Retired options at the value every run had (benchmarks/RESEARCH.md): hashed, so old runs keep theirs.
RETIRED = {"label_smoothing": 0.0, "separable": False}
# Left out of the fingerprint at the value that means "not used", as they were before they existed.
UNUSED = {"ema": 0.0, "teacher_weights": None, "activation": DEFAULT_ACTIVATION}
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


def recipe_fingerprint(args, build=None):
    """runs.fingerprint of the settings that decide the numbers, and of the network's layout.

    It builds the network (with `build`, else build_model) to read its layout. Called right after the
    run's own model is built, its draws from the global random generator come before dropout's, as in
    every recorded run.
    """
    recipe = {key: getattr(with_schedule(args), key) for key in DEFAULTS if key not in NOT_RECIPE}
    recipe.update(RETIRED, **(build or build_model)(args).layout(), width=None)  # the layout names the width
    recipe = {key: value for key, value in recipe.items() if UNUSED.get(key, object()) != value}
    if "teacher_weights" in recipe:  # the weights themselves, wherever the file is
        digests = [runs.file_digest(path) for path in distill.teacher_files(recipe["teacher_weights"])]
        recipe["teacher_weights"] = digests[0] if len(digests) == 1 else digests
    else:
        del recipe["distill_weight"], recipe["distill_temperature"]
    return runs.fingerprint(recipe)


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
        fingerprint, commit = recipe_fingerprint(args), runs.git_commit()
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


def add_train_arguments(parser):
    d, add = DEFAULTS, parser.add_argument
    positive = number(int, 1)
    add("--epochs", type=positive, default=None, metavar="N",
        help=f"training epochs, the fixed schedule (default: {d['epochs']}, or 1 with --dry-run)")
    add("--batch-size", type=positive, default=d["batch_size"], metavar="N",
        help=f"training batch size (default: {d['batch_size']})")
    add("--max-lr", type=number(float, 0, positive=True), default=d["max_lr"], metavar="LR",
        help=f"OneCycle's peak learning rate (default: {d['max_lr']})")
    add("--width", type=positive, default=d["width"], metavar="W",
        help=f"channel width of the network: W, 1.25W, 2W, 2W, 2W (default: {d['width']})")
    add("--channels", type=channel_list, default=d["channels"], metavar="C1,...,C5",
        help="the five convs' channels, overriding --width (default: from --width)")
    add("--stem", default=d["stem"], choices=STEMS, help=f"28x28 to 13x13, model.py (default: {d['stem']})")
    add("--activation", default=d["activation"], choices=ACTIVATIONS,
        help=f"what follows every BatchNorm (default: {d['activation']})")
    add("--dropout", type=number(float, 0, 1), default=d["dropout"], metavar="P",
        help=f"dropout rate on the last feature map (default: {d['dropout']})")
    add("--rotate", type=number(float, 0), default=d["rotate"], metavar="DEG",
        help=f"random rotation, +- degrees (default: {d['rotate']})")
    add("--translate", type=number(float, 0), default=d["translate"], metavar="PX",
        help=f"random shift, +- pixels (default: {d['translate']})")
    add("--scale", type=number(float, 0, 1), default=d["scale"], metavar="F",
        help=f"random zoom, +- fraction (default: {d['scale']})")
    add("--plain-epochs", type=number(int, 0), default=None, metavar="N",
        help=f"train the last N epochs without augmentation (default: {d['plain_epochs']}, never all)")
    add("--ema", type=number(float, 0, 1), default=d["ema"], metavar="DECAY",
        help=f"evaluate and save a moving average of the weights, this decay a step (default: {d['ema']}; 0: off)")
    add("--teacher-weights", default=d["teacher_weights"], metavar="MODEL_PT",
        help="learn also from a trained network (its model.pt), frozen; A.pt,B.pt: from their mean "
             "prediction; for a --val run, ones trained with the same --val (default: none)")
    add("--seed", type=int, default=d["seed"], metavar="S", help=f"random seed (default: {d['seed']})")
    add("--val", type=int, default=d["val"], metavar="N",
        help="hold N training images out as a validation set for tuning: each epoch is measured on it, "
             "and the test set is not loaded at all (default: 0)")
    add("--out", default=None, metavar="DIR", help="output folder (default: a new folder in runs/)")
    add("--precision", default=d["precision"], choices=["auto", "fp32", "bf16"],
        help="bf16 autocast where the hardware supports it natively (default: auto)")
    add("--threads", type=thread_count, default=d["threads"], metavar="N",
        help="CPU threads; auto: OMP_NUM_THREADS or one per core (default: auto)")
    add("--resume", default=None, metavar="CHECKPOINT",
        help="continue an interrupted run from its checkpoint.pt (with --device, --data-dir, --threads only)")
    add("--dry-run", action="store_true", help=f"{DRY_RUN_BATCHES} batches of one epoch end to end, a check")
    # The rest of the recipe is fixed: no flag, but recorded with every run.
    parser.set_defaults(**{key: value for key, value in DEFAULTS.items()
                           if key not in {action.dest for action in parser._actions}})


def build_parser():
    """The whole command line; `parser.commands` maps each command to its own parser."""
    device = OneLineParser(add_help=False)
    device.add_argument("--device", default=DEFAULTS["device"], choices=["auto", "cpu", "cuda", "mps"],
                        help="auto picks CUDA, then Apple MPS, then CPU (default: auto)")
    data_dir = OneLineParser(add_help=False)
    data_dir.add_argument("--data-dir", default=DEFAULTS["data_dir"], metavar="DIR",
                          help=f"where MNIST is kept, fetched if missing (default: {DEFAULTS['data_dir']})")
    parser = OneLineParser(description="Train a tiny CNN to 99.4% on MNIST, and use it.")
    subparsers = parser.add_subparsers(dest="command", metavar="{train,evaluate,predict,serve,export}")
    parser.commands = {}

    def command(name, help_text, parents):
        parser.commands[name] = subparsers.add_parser(name, help=help_text, description=help_text,
                                                      parents=parents)
        return parser.commands[name]

    add_train_arguments(command("train", "train the model (the default command: 'train' may be left out)",
                                [device, data_dir]))
    parser.commands["train"].epilog = ("Other commands: evaluate, predict, serve, export; "
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
    elif not argv or argv[0] not in ("train", *use.COMMANDS):
        argv = ["train"] + argv  # training is the default command
    try:
        if argv[0] == "train" and argv[1:] and not argv[1].startswith("-"):  # training takes flags, not words
            raise no_such_command(argv[1], ["train", *use.COMMANDS])
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command == "train":
            return train(args, given_flags(parser.commands["train"], argv[1:]))
        return use.COMMANDS[args.command](args)
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
