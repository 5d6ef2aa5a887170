"""Using a trained model: `evaluate`, `predict`, `serve` and `export`, and what training shares with them
(the device, loading weights, batched prediction).

    python mnist_99_4.py evaluate         test accuracy, per-class accuracy, confusion matrix
    python mnist_99_4.py predict IMG...   read digits from your own images (photos too)
    python mnist_99_4.py serve            a page to draw a digit on and watch the model read it
    python mnist_99_4.py export --onnx F  write the trained model as ONNX
"""
import argparse
import functools
import io
import json
import os
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

import data
import digit_image
import number_image
from model import Net, count_parameters, layout_of
import runs
from cli import UsageError, number

SHIPPED_WEIGHTS = Path(__file__).resolve().parent / "mnist_net.pt"
JUDGES = {  # which parts of a number are one digit: two judges that vote, and the command that makes each
    SHIPPED_WEIGHTS.with_name("number_judge.pt"): "python number_judge.py",
    SHIPPED_WEIGHTS.with_name("number_judge_pairs.pt"):
        "python number_judge.py --every-pair --out number_judge_pairs.pt",
}
EVAL_BATCH = 500  # no backward pass, so large batches
UNSURE_BELOW = 0.5  # a best guess with less probability than this is reported as unsure
# The model's evidence for a picture, the log of the sum of exp(logit), for each digit 0-9 it may read:
# under it, the features are unlike the digits it learned, however the probability is shared (a
# scribble can read 2 at 99%). Each is the 0.75th percentile of the evidence of validation digits that
# ten models never saw, read as that digit; the bar chose it (benchmarks/results/unsure_bound.md).
LEAST_EVIDENCE = (4.74, 3.94, 4.38, 5.17, 5.05, 4.91, 5.33, 4.75, 4.66, 4.92)


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


def autocast(device, precision):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def memory_format(device):
    """channels_last on CPU, where oneDNN runs such convolutions directly and the default layout takes a
    slower path (model.LayoutBatchNorm2d covers the one layer it slows); the default layout elsewhere."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def shown_path(path):
    """`path` relative to the working directory where it can be, so nothing prints this machine's layout."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def load_trained_model(path, device, classes=10):
    """A Net with the weights of `path`: a state_dict (model.pt) or a training checkpoint.

    The layout is read off the weights, so a model trained with any --width,
    --channels, --stem or --activation loads. Anything else is refused with a
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
    if not layout or len(layout["channels"]) != 5:
        raise UsageError(f"{path}: a PyTorch file, but not the weights of this project's Net")
    if not all(torch.isfinite(value).all() for value in state.values() if value.is_floating_point()):
        raise UsageError(f"{path}: damaged: some weights are not finite numbers (NaN or infinite)")
    if layout.get("classes", 10) != classes:
        raise UsageError(f"{path}: a Net of {layout.get('classes', 10)} classes, not {classes}"
                         + (" (the number reader's judge, not a digit model)" if classes == 10 else ""))
    check_recorded_hash(path)
    try:
        model = Net(**layout)
        model.load_state_dict(state)
    except (RuntimeError, ValueError):
        raise UsageError(f"{path}: the weights of a different architecture than model.Net "
                         f"(channels {layout['channels']}); was it trained with another version?") from None
    return model.to(device, memory_format=memory_format(device)).eval()


def check_recorded_hash(path):
    """Refuse weights whose SHA-256 differs from the one recorded beside them: `NAME.sha256` (as
    `sha256sum` writes it; the shipped weights have one) or a run folder's metrics.json."""
    recorded = None
    checksum_file, metrics_file = path.with_name(path.name + ".sha256"), path.with_name("metrics.json")
    if checksum_file.is_file():
        recorded, record = checksum_file.read_text().split()[0], checksum_file
    elif path.name == "model.pt" and metrics_file.is_file():
        try:
            recorded, record = json.loads(metrics_file.read_text()).get("model_sha256"), metrics_file
        except (ValueError, AttributeError):
            pass  # not a run's metrics: nothing recorded to check against
    if recorded and runs.file_sha256(path) != recorded:
        raise UsageError(f"{path}: damaged: its SHA-256 differs from the one recorded in {record}")


@torch.no_grad()
def predict_batches(model, images, device, batch_size=EVAL_BATCH, logits=False):
    """Log-probabilities (N, 10) for uint8 images (N, 28, 28), in float32; or the logits before the softmax."""
    model.eval()
    forward = model.logits if logits else model
    outputs = [forward(data.normalize(images[i:i + batch_size].to(device)).unsqueeze(1)
                     .contiguous(memory_format=memory_format(device))).float().cpu()
               for i in range(0, len(images), batch_size)]
    return torch.cat(outputs)


def evaluate(model, images, labels, device):
    """Mean loss and accuracy (%) of `model` on a labelled set."""
    log_probs = predict_batches(model, images, device)
    labels = labels.cpu()
    loss = F.nll_loss(log_probs, labels).item()
    accuracy = 100 * (log_probs.argmax(1) == labels).float().mean().item()
    return loss, accuracy


def digit_logits(model, digit, device):
    """The ten logits for one 28x28 uint8 digit from digit_image."""
    return predict_batches(model, torch.from_numpy(digit)[None], device, logits=True)[0]


def model_doubt(logits):
    """Why the model's ten logits say the picture is unlikely to be a digit, or ""."""
    if logits.softmax(0).max() < UNSURE_BELOW:
        return "no digit stands out"
    if torch.logsumexp(logits, 0) < LEAST_EVIDENCE[int(logits.argmax())]:
        return "unlike the digits it learned"
    return ""


class Reading(NamedTuple):
    digit: object          # the (28, 28) uint8 image the model saw
    probabilities: object  # its ten probabilities, a tensor
    doubt: str             # why the image is unlikely to be one digit, or ""

    @property
    def unsure(self):
        return bool(self.doubt)


def read_digit(model, source, device, ink=None, max_pixels=digit_image.MAX_PIXELS):
    """What `predict` and the page read in one image file (a path or a file object).

    Unsure when the picture is unlike one digit (digit_image.layout_doubt), or when the model's scores
    doubt it (model_doubt): a best guess with less than UNSURE_BELOW of the probability, or evidence
    under LEAST_EVIDENCE for the digit it reads.
    """
    picture = digit_image.read_picture(source, ink, max_pixels)
    return reading_of(picture, digit_logits(model, picture.digit, device))


def reading_of(picture, logits):
    """The Reading of a digit_image.Picture from the model's ten logits for it."""
    return Reading(picture.digit, logits.softmax(0), picture.doubt or model_doubt(logits))


def number_reading(picture, logits, judged):
    """The Reading of one digit of a number: the model's probabilities with number_image.JUDGES_SHARE of the
    judges' for its span (`judged`, ten), unsure where the model's own reading is."""
    reading = reading_of(picture, logits)
    share = number_image.JUDGES_SHARE
    return reading._replace(probabilities=(1 - share) * reading.probabilities + share * judged)


class DigitOfNumber(NamedTuple):
    reading: Reading
    box: tuple  # (x, y, width, height) of its ink in the image, in the file's pixels (upright, as EXIF says)
    after_point: bool = False  # a decimal point or comma is written just before it (12.5)


class Vote(torch.nn.Module):
    """Judges that vote: the log of the mean of their probabilities. One judge is sure a 1 and the digit it
    overlaps are one digit where the other is not; the mean sides with whichever is surer (rounds 23-25)."""

    def __init__(self, judges):
        super().__init__()
        self.judges = torch.nn.ModuleList(judges)

    def forward(self, x):
        return torch.logsumexp(torch.stack([judge(x) for judge in self.judges]), dim=0) - np.log(len(self.judges))


@functools.cache
def number_judge(device, paths=None):
    """The number reader's judges (number_judge.py), loaded once, voting: the shipped two, or those of
    `paths`, joined by commas (a benchmark's --judge)."""
    chosen = {path: f"python number_judge.py --out {path}" for path in paths.split(",")} if paths else JUDGES
    judges = []
    for path, remake in chosen.items():
        try:
            judges.append(load_trained_model(shown_path(path), device, classes=number_image.NOT_ONE_DIGIT + 1))
        except UsageError as error:
            raise UsageError(f"{error} (a judge of the number reader: `{remake}` makes it again)") from None
    return judges[0] if len(judges) == 1 else Vote(judges).eval()


def digits_of_marks(model, judge, ink, strongest, marks, device):
    """Each mark cut where the judges (and the model) find its spans likeliest each to be one digit
    (number_image.py), each part read by the model: (mark, Picture, logits, the judges' ten probabilities
    for the digits of its span) for each digit, left to right. Each network reads every mark's pictures in
    one call, not a call a mark: for batches this small a call's own cost is most of its time."""
    parts = [number_image.possible_parts(ink, strongest, mark) for mark in marks]
    read = []
    for mark, mark_parts, (judged, scores) in zip(marks, parts, span_scores(model, judge, parts, device)):
        spans = number_image.likeliest_spans(mark_parts, scores)
        cut = number_image.cut_at(mark, number_image.columns_between(mark_parts, spans))
        if cut is None:  # a part holds no ink: the mark is read whole
            cut, spans = [mark], [(0, mark_parts.width)]
        digits_judged = judged[[mark_parts.spans.index(span) for span in spans], :number_image.NOT_ONE_DIGIT].exp()
        for part, part_judged in zip(cut, digits_judged / digits_judged.sum(dim=1, keepdim=True)):
            try:
                read.append((part, number_image.digit_picture(ink, strongest, part), part_judged))
            except digit_image.NoDigitError:  # a part too faint to read
                pass
    if not read:
        return []
    logits = predict_batches(model, torch.from_numpy(np.stack([p.digit for _, p, _ in read])), device, logits=True)
    return [(part, picture, part_logits, part_judged)
            for (part, picture, part_judged), part_logits in zip(read, logits)]


def span_scores(model, judge, parts, device):
    """For each mark's Parts: the judges' log-probabilities for each span, and each span's score
    (number_image.SURE_WEIGHT): the judges' log-probability that it is one whole digit, plus a share of the
    model's for the digit it reads there, read only where it could change the cuts
    (number_image.LEAST_SURE); elsewhere the least that share can be."""
    pictures = torch.from_numpy(np.concatenate([mark_parts.pictures for mark_parts in parts]))
    ends = np.cumsum([len(mark_parts.spans) for mark_parts in parts])
    marks_spans = [slice(end - len(mark_parts.spans), end) for mark_parts, end in zip(parts, ends)]
    judged = predict_batches(judge, pictures, device)
    one_digit = torch.log1p(-judged[:, number_image.NOT_ONE_DIGIT].exp().clamp(max=1 - 1e-6))
    sure = torch.full_like(one_digit, number_image.LEAST_SURE)
    may_win = torch.tensor([win for mark_parts, spans in zip(parts, marks_spans) for win in
                            number_image.may_be_likeliest(mark_parts, one_digit[spans].tolist(),
                                                          (sure + one_digit)[spans].tolist())])
    sure[may_win] = number_image.SURE_WEIGHT * predict_batches(model, pictures[may_win], device).max(dim=1).values
    scores = one_digit + sure
    return [(judged[spans], scores[spans].tolist()) for spans in marks_spans]


def number_marks(source, ink, max_pixels):
    """number_image.marks_of an image file, and where its working copy's corner lies in the file's pixels.

    A number small in a large photo (a line under number_image.SMALL_LINE pixels of the working copy) is
    read again from the file's own pixels around it, decoded as finely as `max_pixels` allows.
    """
    picture = digit_image.open_picture(source, max_pixels)
    found = number_image.marks_of(picture, ink)
    _, marks, _, scale, _ = found
    if number_image.line_height(marks) >= number_image.SMALL_LINE or scale <= 1:
        return (*found, (0, 0))
    try:
        if picture.info[digit_image.FILE_PIXELS] > 1:  # a JPEG decoded at a fraction of its size
            picture = digit_image.decoded_finer(source, picture, max_pixels)
        file_pixels = picture.info[digit_image.FILE_PIXELS]
        around = number_image.around_the_line(marks, scale / file_pixels, picture.size)
        # marks_of the crop counts in the file's pixels, as the crop keeps the picture's info
        return (*number_image.marks_of(picture.crop(around), ink), (around[0] * file_pixels, around[1] * file_pixels))
    except ValueError:  # too large to decode whole, or nothing read closer: the first reading stands
        return (*found, (0, 0))


def read_number(model, source, device, ink=None, max_pixels=digit_image.MAX_PIXELS, judge=None):
    """Every digit of a written number in one image file, left to right (number_image.py), cut by `judge`
    (by default the shipped one). Raises what read_picture raises, and number_image.NumberError for a
    picture of too many marks to be a number."""
    judge = judge if judge is not None else number_judge(device)
    ink_strength, marks, strongest, scale, points, (left, top) = number_marks(source, ink, max_pixels)
    points_at = [point.box[0] + point.box[2] / 2 for point in points]  # their middles, in the working copy
    digits = []
    for part, picture, logits, judged in digits_of_marks(model, judge, ink_strength, strongest, marks, device):
        x, y, width, height = (v * scale for v in part.box)
        box = (round(left + x), round(top + y), round(width), round(height))
        after_point = any(digits and digits[-1].box[0] + digits[-1].box[2] / 2 < left + at * scale < left + x
                          for at in points_at)
        digits.append(DigitOfNumber(number_reading(picture, logits, judged), box, after_point))
    if not digits:
        raise digit_image.NoDigitError(digit_image.NO_INK)
    return digits


def number_text(digits):
    """What a number's DigitOfNumbers read (number_image.written): `2026`, or `12.5`."""
    return number_image.written((int(d.reading.probabilities.argmax()), d.after_point) for d in digits)


# ---------------------------------------------------------------- the commands


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
    if args.confusion_png or args.errors_png:
        import plots  # matplotlib is slow to import: only when a picture is asked for
    written = True
    if args.confusion_png:
        written &= wrote("--confusion-png", args.confusion_png, lambda: plots.plot_confusion_matrix(
            confusion, args.confusion_png))
    if args.errors_png:
        wrong = (predicted != labels).nonzero().flatten()[:args.max_errors]
        confidence = log_probs[wrong].exp().max(1).values
        written &= wrote("--errors-png", args.errors_png, lambda: plots.plot_misclassified(
            images[wrong], labels[wrong], predicted[wrong], confidence, args.errors_png),
            f" ({len(wrong)} of {int((predicted != labels).sum())} errors)")
    return 0 if written else 1


def wrote(flag, path, write, detail=""):
    """write() a picture and say so; on a full or read-only disk, one line and False, and the rest goes on."""
    try:
        write()
    except OSError as error:
        print(f"error: {flag} {path}: cannot write it ({error.strerror or error})", file=sys.stderr)
        return False
    print(f"Wrote {path}{detail}")
    return True


def seen_image_path(path):
    """Where --show-crop writes what the model saw: beside the input, photo.jpg -> photo.seen.png."""
    path = Path(path)
    return path.with_name(path.stem + ".seen.png")


def predict_line(path, reading, top_k):
    """`photo.jpg: 7 (99.2%)`; `scan.png: 6 (unsure: 41.0%, no digit stands out)` when in doubt."""
    top = reading.probabilities.topk(top_k)
    guesses = [f"{int(d)} ({100 * p:.1f}%)" for p, d in zip(top.values, top.indices)]
    if reading.unsure:
        guesses[0] = f"{int(top.indices[0])} (unsure: {100 * top.values[0]:.1f}%, {reading.doubt})"
    return f"{path}: " + ", ".join(guesses)


def show_crop(path, digit):
    """Write what the model saw beside the input; the words that say where."""
    seen_path = seen_image_path(path)
    data.write_atomically(seen_path, digit_image.png_bytes(digit))
    return f"   (the model saw {seen_path})"


def number_line(path, digits):
    """`2026.png: 2026 (99.8% 99.9% 97.1% 99.5%)`, and which digits are unsure and why."""
    best = [digit.reading.probabilities.max() for digit in digits]
    line = (f"{path}: {number_text(digits)} "
            f"({' '.join(f'{100 * p:.1f}%' for p in best)})")
    unsure = [f"digit {i} ({digit.reading.doubt})" for i, digit in enumerate(digits, 1) if digit.reading.unsure]
    return line + (f"; unsure of {', '.join(unsure)}" if unsure else "")


def show_number_crop(path, digits):
    """Write the picture of what was read beside the input: each digit's box, and the 28x28 it became."""
    seen_path = seen_image_path(path)
    read = [(d.box, d.reading.digit, int(d.reading.probabilities.argmax())) for d in digits]
    picture = number_image.seen_picture(digit_image.open_picture(path), read)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    data.write_atomically(seen_path, buffer.getvalue())
    return f"   (what was read: {seen_path})"


def several_digits(model, path, device, reading):
    """For a picture that is unlike one digit because of its layout: the doubt that says it holds several
    digits side by side when it reads as a number of sure digits, else the reading's own doubt."""
    if reading.doubt not in (digit_image.OTHER_MARKS, digit_image.TOO_WIDE):
        return reading.doubt
    try:
        digits = read_number(model, path, device)
    except (OSError, ValueError, UsageError):  # not a number either (or no judge): the reading's doubt says enough
        return reading.doubt
    if len(digits) < 2 or any(digit.reading.unsure for digit in digits):  # a word's letters are not digits
        return reading.doubt
    return f"{len(digits)} digits side by side: read them with --number"


def predict_command(args):
    device = pick_device(args.device)
    model = load_trained_model(args.checkpoint, device)
    judge = number_judge(device) if args.number else None  # a missing judge is said once, before any file
    failures = 0
    for path in args.images:
        try:
            if args.number:
                digits = read_number(model, path, device, judge=judge)
            else:
                reading = read_digit(model, path, device)
                reading = reading._replace(doubt=several_digits(model, path, device, reading))
        except (OSError, ValueError) as error:  # missing, unreadable, not an image, no ink, not a number
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            print(f"{path}: error: {reason}", file=sys.stderr)
            failures += 1
            continue
        line = number_line(path, digits) if args.number else predict_line(path, reading, args.top_k)
        if args.show_crop:
            try:
                line += show_number_crop(path, digits) if args.number else show_crop(path, reading.digit)
            except OSError as error:  # a read-only or full folder: said on this file's line, the rest read
                line += f"   (error: cannot write {seen_image_path(path)}: {error.strerror or error})"
                failures += 1
        print(line)
    return 1 if failures else 0


def page_server(model, device, host, port):
    """server.make_server reading digits and numbers with `model`."""
    import server  # the web page's imports are only paid for by `serve`

    judge = number_judge(device)  # loaded now: a missing judge stops `serve` before it listens

    def read(file, ink, max_pixels):
        return read_digit(model, file, device, ink, max_pixels)

    def read_written_number(file, ink, max_pixels):
        return read_number(model, file, device, ink, max_pixels, judge)

    return server.make_server(read, host, port, read_written_number)


def serve_command(args):
    import server  # the web page's imports are only paid for by `serve`

    # One image at a time: splitting so small a forward pass over threads costs more than it saves,
    # and on a busy machine the threads wait for each other (benchmarks/serve_latency.py measures it).
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    model = load_trained_model(args.checkpoint, device)

    try:
        web = page_server(model, device, args.host, args.port)
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
    # Stopped cleanly: end here, before the interpreter's teardown, where a native thread left over from
    # reading images can abort the process after "stopped" (SIGABRT, "terminate called without an active
    # exception"; about 1 Ctrl-C in 10 once clients had hung up, in tests/test_serve.py).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def export_command(args):
    onnx_path = Path(args.onnx)
    if onnx_path.is_dir() or args.onnx.endswith(("/", os.sep)):
        raise UsageError(f"--onnx {args.onnx}: a folder; give the file to write, such as "
                         f"{onnx_path / 'mnist_net.onnx'}")
    if not onnx_path.parent.is_dir():
        raise UsageError(f"--onnx {args.onnx}: no folder {onnx_path.parent} to write it in")
    # The default layout: ONNX has no memory formats, and tracing channels_last weights pins the batch size.
    model = load_trained_model(args.checkpoint, torch.device("cpu")).to(memory_format=torch.contiguous_format)
    example = data.normalize(torch.zeros(1, 1, 28, 28, dtype=torch.uint8))
    onnx_program = torch.onnx.export(model, (example,), input_names=["image"], output_names=["log_probs"],
                                     dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, dynamo=True,
                                     verbose=False)
    try:
        data.write_atomically(onnx_path, onnx_program.model_proto.SerializeToString())
    except OSError as error:
        raise UsageError(f"--onnx {args.onnx}: cannot write it ({error.strerror or error})") from None
    print(f"Wrote {args.onnx}: input 'image' (N, 1, 28, 28) float, pixels p in 0-1 given as "
          f"(p - {data.MNIST_MEAN}) / {data.MNIST_STD}; "
          f"output 'log_probs' (N, 10)")
    return 0


COMMANDS = {"evaluate": evaluate_command, "predict": predict_command, "serve": serve_command,
            "export": export_command}


def add_commands(add_command, device, data_dir):
    """The four commands' parsers; `add_command(name, help, parents)` makes one, `device` and `data_dir`
    are the shared flags' parent parsers."""
    checkpoint = argparse.ArgumentParser(add_help=False)
    checkpoint.add_argument("--checkpoint", default=shown_path(SHIPPED_WEIGHTS), metavar="PATH",
                            help="trained weights, a model.pt of a run (default: the shipped mnist_net.pt)")

    evaluate = add_command("evaluate", "test accuracy, per-class accuracy, confusion matrix",
                           [checkpoint, device, data_dir])
    evaluate.add_argument("--confusion-png", metavar="PNG", help="also draw the confusion matrix here")
    evaluate.add_argument("--errors-png", metavar="PNG", help="also draw misclassified digits here")
    evaluate.add_argument("--max-errors", type=number(int, 0), default=64, metavar="N",
                          help="at most this many digits in --errors-png (default: 64)")

    predict = add_command("predict", "read the digit in each image file", [checkpoint, device])
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, ... of any size")
    predict.add_argument("--top-k", type=int, default=1, choices=range(1, 11), metavar="K",
                         help="show the K likeliest digits (default: 1)")
    predict.add_argument("--show-crop", action="store_true",
                         help="write the 28x28 image the model saw beside each input, as NAME.seen.png")
    predict.add_argument("--number", action="store_true",
                         help="read every digit of a written number, left to right, and a decimal point between "
                              "two (--show-crop: their boxes)")

    serve = add_command("serve", "a web page to draw a digit on and watch the model read it", [checkpoint, device])
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=number(int, 0, 65536), default=8000,
                       help="port to listen on; 0 picks a free one (default: 8000)")
    serve.add_argument("--threads", type=number(int, 1), default=1, metavar="N",
                       help="CPU threads for each image's forward pass (default: 1, the fastest for one "
                            "image: benchmarks/serve_latency.py)")

    export = add_command("export", "write the trained model as ONNX", [checkpoint])
    export.add_argument("--onnx", required=True, metavar="PATH", help="the .onnx file to write")
