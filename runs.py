"""A training run's records: its folder, log, fingerprint, atomic saves and resume checkpoint.

A run writes into its --out folder (default: a new folder in runs/):

    train.log      the log as printed
    metrics.json   the final accuracy, the recipe, the fingerprint, the commit, every epoch
    model.pt       the final weights (a state_dict of model.Net)
    curves.png     loss and accuracy per epoch (python plots.py METRICS_JSON draws it again)
    checkpoint.pt  while the run is under way: the state before the current epoch, for --resume

Every file is written whole or not at all, so a crash never leaves half a file.
"""
import atexit
import contextlib
import copy
import hashlib
import io
import json
import os
import subprocess
import time
from datetime import datetime
from pathlib import Path

import torch
from tqdm import tqdm

import data
from cli import UsageError
from model import count_parameters, multiply_adds_per_image


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

    def forget_epochs_from(self, epoch):
        """Drop the log's lines of epochs `epoch` and later: a run stopped after an epoch's line but before
        the next checkpoint runs that epoch again when resumed, and would log it twice."""
        def later_epoch(line):
            fields = line.split()
            return len(fields) == 6 and fields[0].isdigit() and int(fields[0]) >= epoch
        lines = self.path.read_text().splitlines(keepends=True)
        self.path.write_text("".join(line for line in lines if not later_epoch(line)))


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


LOCK_NAME = ".run.lock"  # in a run's folder while the run is writing to it
HELD_LOCKS = set()


def output_folder(out, resuming=False, dry_run=False):
    """--out, or a new dated folder in runs/ (named as a dry run's for one); created, proven to take files
    and held by this run alone (claim_folder) before any work starts. A folder holding an interrupted run
    is refused unless that run is being resumed: a new run there would delete its checkpoint."""
    if out:
        path = Path(out)
    else:
        stamp = datetime.now().strftime("%Y-%m-%d_%H%M%S") + ("_dry-run" if dry_run else "")
        path, n = Path("runs") / stamp, 1
        while path.exists():
            n += 1
            path = Path("runs") / f"{stamp}_{n}"
    try:
        data.check_writable(path)
    except OSError as error:
        raise UsageError(f"cannot write to the output folder {path}: {error.strerror or error}") from None
    claim_folder(path)  # first: a run still writing here has a checkpoint too, but is not interrupted
    if not resuming and (path / "checkpoint.pt").exists():
        raise UsageError(f"{path} holds an interrupted run: continue it with python mnist_99_4.py --resume "
                         f"{path / 'checkpoint.pt'}, or start afresh with another --out")
    return path


def claim_folder(path):
    """Keep other runs out of `path`: a lock file naming this process, removed when the run ends
    (release_folders) or the process exits. A lock whose process has ended (a run killed outright) is
    taken over."""
    lock = path / LOCK_NAME
    while True:
        try:
            with open(lock, "x") as mine:
                mine.write(str(os.getpid()))
            break
        except FileExistsError:
            holder = lock.read_text().strip()
            if holder.isdigit() and int(holder) != os.getpid() and process_alive(int(holder)):
                raise UsageError(f"another run (process {holder}) is writing to {path}; give this one another "
                                 f"--out") from None
            lock.unlink(missing_ok=True)  # left by a run that is gone
    HELD_LOCKS.add(lock)
    # Half-written files of a run killed outright (data.write_atomically names them .NAME.PID.tmp): with
    # the folder held, any whose writer has ended is debris.
    for debris in path.glob(".*.tmp"):
        writer = debris.name.split(".")[-2]
        if writer.isdigit() and int(writer) != os.getpid() and not process_alive(int(writer)):
            debris.unlink(missing_ok=True)


@atexit.register
def release_folders():
    """Remove the locks this process holds (claim_folder): its runs have ended."""
    for lock in list(HELD_LOCKS):
        if lock.exists() and lock.read_text().strip() == str(os.getpid()):
            lock.unlink(missing_ok=True)
        HELD_LOCKS.discard(lock)


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


# ---------------------------------------------------------------- what a run is


def fingerprint(recipe):
    """A short hash of a run's recipe (its settings and its network's layout): equal fingerprints, same
    training. Seed tables find finished runs by it (benchmarks/seeds.py)."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def file_sha256(path):
    """A file's SHA-256, as `sha256sum` prints it."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def file_digest(path):
    """The first 16 hex digits of a file's SHA-256; None if it cannot be read."""
    try:
        return file_sha256(path)[:16]
    except OSError:
        return None


def git_commit(folder=Path(__file__).resolve().parent):
    """The commit of the checkout in `folder` (this program's), '-dirty' if tracked files differ from it;
    None outside git."""
    try:
        result = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"],
                                cwd=folder, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (result.stdout.strip() or None) if result.returncode == 0 else None


def model_summary(model):
    """torchsummary's table, run on a CPU copy: it knows only 'cuda' and 'cpu'."""
    from torchsummary import summary  # only a run's log needs it

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        summary(copy.deepcopy(model).cpu().float(), (1, 28, 28), device="cpu")
    return buffer.getvalue().rstrip()


def finish_run(args, model, device, history, eval_name, metrics, log, timer, started):
    """Save the final model's weights, metrics and curves. The last epoch's line already measured this
    final model on the evaluation set: the test set, or for a --val run the validation split."""
    out = Path(args.out)
    accuracy, params = history[-1][f"{eval_name}_accuracy"], count_parameters(model)
    metrics = {f"{eval_name}_accuracy": accuracy, f"{eval_name}_loss": history[-1][f"{eval_name}_loss"],
               "params": params, "multiply_adds": multiply_adds_per_image(model), "epochs": args.epochs,
               "width": model.width, "layout": model.layout(),
               "device": str(device), "precision": args.precision, "threads": args.threads,
               "torch": torch.__version__, "dry_run": args.dry_run,
               "args": {k: v for k, v in vars(args).items() if k != "command"}, "history": history, **metrics}
    with timer("saving"):
        import plots  # matplotlib is slow to import and only this last step draws

        save_atomically(model.state_dict(), out / "model.pt")
        plots.plot_training_curves(history, out / "curves.png", eval_name)
    # The phases of this process: a resumed run's earlier epochs are in "seconds" but not here.
    metrics["phase_seconds"] = {phase: round(s, 2) for phase, s in timer.seconds.items()}
    metrics["phase_seconds"]["total"] = round(time.perf_counter() - started, 2)
    # Loading checks the weights against this (use.check_recorded_hash): a damaged file is refused.
    metrics["model_sha256"] = file_sha256(out / "model.pt")
    save_atomically(metrics, out / "metrics.json")
    what = "validation" if eval_name == "val" else "test"
    if args.dry_run:  # a few batches: the figure says the pipeline runs, not how well the model does
        log(f"Dry run done: the pipeline works end to end. Its {what} accuracy of {accuracy:.2f}%, after a "
            f"few batches, measures nothing: for a real run, leave out --dry-run")
    else:
        log(f"Final model after {args.epochs} epochs ({params:,} parameters, {metrics['seconds']:.1f} s): "
            f"{what} accuracy {accuracy:.2f}%")
    log("Where the time went: " + ", ".join(f"{phase} {s:.1f} s" for phase, s in metrics["phase_seconds"].items()))
    log(f"Saved {out / 'model.pt'}, {out / 'metrics.json'}, {out / 'train.log'}, {out / 'curves.png'}")
    if eval_name == "val":
        log(f"The test set was not used. Once this is the model chosen, measure it there: "
            f"python mnist_99_4.py evaluate --checkpoint {out / 'model.pt'}")


# ---------------------------------------------------------------- resume


def save_checkpoint(path, args, epoch, history, seconds, model, average, optimizer, scheduler, generator, device):
    """Everything a run needs to go on from the start of `epoch` exactly (--resume)."""
    state = dict(args=vars(args), epoch=epoch, history=history, seconds=seconds, model=model.state_dict(),
                 optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                 rng=rng_state(generator, device))
    if average:
        state["average"] = average.model.state_dict()
    save_atomically(state, path)


def restore_checkpoint(checkpoint, model, average, optimizer, scheduler, generator, device, notes, path):
    """Put a saved state back (adding to `notes` what differs); returns its history, seconds and epoch.
    A checkpoint with a part missing or of the wrong shape is refused in one line."""
    try:
        return restore_parts(checkpoint, model, average, optimizer, scheduler, generator, device, notes)
    except KeyError as missing:
        raise UsageError(f"{path}: not a whole checkpoint: it has no {missing}; start afresh with another "
                         "--out") from None
    except (RuntimeError, ValueError, TypeError) as error:  # load_state_dict's size mismatches, and the like
        reason = str(error).strip().splitlines()[-1].strip()
        raise UsageError(f"{path}: a checkpoint that does not fit this run ({reason}); start afresh with "
                         "another --out") from None


def restore_parts(checkpoint, model, average, optimizer, scheduler, generator, device, notes):
    model.load_state_dict(checkpoint["model"])
    if average:
        average.model.load_state_dict(checkpoint["average"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    epoch = checkpoint["epoch"]
    note = set_rng_state(checkpoint["rng"], generator, device, 1000 * checkpoint["args"]["seed"] + epoch)
    notes.extend([note] if note else [])
    return checkpoint["history"], checkpoint["seconds"], epoch


def rng_state(generator, device):
    state = {"torch": torch.get_rng_state(), "generator": generator.get_state(), "device": device.type}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state, generator, device, reseed):
    """Continue the random streams of an interrupted run. A generator's state only fits a generator of
    its own kind (a CUDA one is 16 bytes, a CPU one 5 KB): on another kind of device the batch
    generator is reseeded with `reseed` instead; returns a note saying so, or None."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
    saved_on = state.get("device", "cuda" if "cuda" in state else "cpu")
    if saved_on == device.type:
        generator.set_state(state["generator"])
        return None
    generator.manual_seed(reseed)
    return (f"The run began on {saved_on} and goes on on {device.type}, whose batch order and augmentation "
            f"cannot continue the other's: from here they are drawn afresh, so the numbers will differ a "
            f"little from an uninterrupted run's")


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


def resumed_settings(args, given_flags, checkpoint, may_change, notes):
    """The interrupted run's settings, with those flags given now that are in `may_change`; any other
    flag that would change the run is refused."""
    saved = checkpoint["args"]
    for dest in sorted(given_flags - {"resume"}):
        flag = "--" + dest.replace("_", "-")
        if dest in may_change:
            # Another device or thread count adds the same numbers in another order: the last bits differ,
            # and over a run that can move the final accuracy by a few hundredths (99.31 against 99.32, seen).
            effect = ("not its numbers" if dest == "data_dir" else
                      "so its numbers may differ slightly from an uninterrupted run's")
            notes.append(f"Resuming with {flag} {getattr(args, dest)} as asked (the run used "
                         f"{saved.get(dest)}): it changes where the run happens, {effect}")
        elif dest == "out":
            raise UsageError(f"--resume continues in the checkpoint's own folder; leave out {flag}")
        elif getattr(args, dest) != saved.get(dest):
            raise UsageError(f"--resume: {flag} {getattr(args, dest)} would change the run it continues "
                             f"(trained with {saved.get(dest)}); leave it out")
    kept = {dest: getattr(args, dest) for dest in given_flags & may_change}
    merged = {**vars(args), **{key: value for key, value in saved.items() if key in vars(args)}, **kept}
    return type(args)(**{**merged, "resume": args.resume, "out": str(Path(args.resume).parent)})
