"""Using the trained model: the shipped weights, evaluate, predict and export."""
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import import_or_needs
import data
import mnist_99_4
import runs
import use
from model import Net
from digit_pictures import STYLES

SHIPPED = use.SHIPPED_WEIGHTS
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def test_set(mnist_dir):
    return data.load_mnist(mnist_dir, train=False)


def test_shipped_weights_reach_99_4_on_the_real_test_set(test_set):
    images, labels = test_set
    state = torch.load(SHIPPED, weights_only=True)
    net = Net()
    net.load_state_dict(state)
    log_probs = use.predict_batches(net, images, CPU)
    accuracy = 100 * (log_probs.argmax(1) == labels).float().mean().item()
    assert accuracy >= 99.4


@pytest.mark.slow
def test_evaluate_reports_accuracy_per_class_and_writes_pictures(tmp_path, mnist_dir):
    confusion_png, errors_png = tmp_path / "confusion.png", tmp_path / "errors.png"
    result = subprocess.run([sys.executable, "mnist_99_4.py", "evaluate", "--data-dir", mnist_dir,
                             "--confusion-png", str(confusion_png), "--errors-png", str(errors_png)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    accuracy = float(re.search(r"Test accuracy: ([\d.]+)%", result.stdout).group(1))
    assert accuracy >= 99.4
    assert len(re.findall(r"\d: \d+\.\d\d%", result.stdout)) == 10
    assert confusion_png.stat().st_size > 0 and errors_png.stat().st_size > 0


@pytest.mark.parametrize("style", sorted(STYLES))
@pytest.mark.slow
def test_predict_reads_digits_drawn_as_people_draw_them(style, tmp_path, test_set, capsys):
    images, labels = test_set
    rng = np.random.default_rng(0)
    paths = []
    for i in range(30):
        path = tmp_path / f"{i}-{style}"
        STYLES[style](images[i].numpy(), rng).save(path)
        paths.append(str(path))

    assert mnist_99_4.main(["predict", *paths]) == 0

    lines = capsys.readouterr().out.splitlines()
    # A hard one may be called unsure beside its guess: the guess still counts.
    predicted = [int(re.match(rf"{re.escape(p)}: (\d) \((unsure: )?\d+\.\d%(, [a-z' ]+)?\)$", line).group(1))
                 for p, line in zip(paths, lines)]
    correct = sum(p == int(t) for p, t in zip(predicted, labels[:30]))
    assert correct >= 28, f"{correct}/30 correct for {style}"


def test_predict_top_k_lists_k_digits_in_order(tmp_path, test_set, capsys):
    path = tmp_path / "seven.png"
    STYLES["paper.jpg"](test_set[0][0].numpy(), np.random.default_rng(1)).save(path)
    assert mnist_99_4.main(["predict", str(path), "--top-k", "3"]) == 0
    line = capsys.readouterr().out.strip()
    percents = [float(p) for p in re.findall(r"\d \((\d+\.\d)%\)", line)]
    assert line.startswith(f"{path}: 7 (") and len(percents) == 3 and percents == sorted(percents, reverse=True)


def test_onnx_export_agrees_with_pytorch_on_real_digits(tmp_path, test_set, capsys):
    ort = import_or_needs("onnxruntime", "onnxruntime is not installed")
    onnx_path = tmp_path / "mnist_net.onnx"
    assert mnist_99_4.main(["export", "--onnx", str(onnx_path)]) == 0
    assert f"(p - {data.MNIST_MEAN}) / {data.MNIST_STD}" in capsys.readouterr().out  # the input's scale, in numbers

    images = data.normalize(test_set[0][:1000]).unsqueeze(1)
    session = ort.InferenceSession(str(onnx_path))
    onnx_out = session.run(None, {"image": images.numpy()})[0]
    net = use.load_trained_model(SHIPPED, CPU)
    with torch.no_grad():
        torch_out = net(images).numpy()
    assert [i.name for i in session.get_inputs()] == ["image"]  # the names the README and --help give
    assert [o.name for o in session.get_outputs()] == ["log_probs"]
    assert onnx_out.shape == (1000, 10)
    assert np.abs(onnx_out - torch_out).max() < 1e-4
    assert (onnx_out.argmax(1) == torch_out.argmax(1)).all()


def thick_small_eight(size=280):
    """A small 8 in thick strokes on a white canvas: its loops are small holes of paper inside the ink."""
    from PIL import Image, ImageDraw
    image = Image.new("L", (size, size), 255)
    pen = ImageDraw.Draw(image)
    for cy, r in ((0.4, 0.075), (0.57, 0.095)):
        pen.ellipse([size * (0.5 - r), size * (cy - r), size * (0.5 + r), size * (cy + r)], outline=0, width=16)
    return image


def test_polarity_is_read_off_the_paper_around_the_digit_not_the_holes_in_its_strokes(tmp_path, test_set, capsys):
    import digit_image
    eight = thick_small_eight()
    gray = np.asarray(eight, dtype=np.float32) / 255
    assert not digit_image.light_ink(gray, 47)  # dark ink on white, however its holes stand out
    mnist = test_set[0][0].numpy().astype(np.float32) / 255
    assert digit_image.light_ink(mnist, 7)  # white on black, as MNIST
    path = tmp_path / "eight.png"
    eight.save(path)
    assert mnist_99_4.main(["predict", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: 8 (")


def test_the_confusion_matrix_has_true_digits_in_rows(mnist_dir, monkeypatch, capsys):
    def always_three(model, images, device, batch_size=use.EVAL_BATCH):
        return torch.log(torch.nn.functional.one_hot(torch.full((len(images),), 3), 10).float() + 1e-9)

    monkeypatch.setattr(use, "predict_batches", always_three)
    assert mnist_99_4.main(["evaluate", "--data-dir", mnist_dir]) == 0
    out = capsys.readouterr().out
    rows = {int(line.split()[0]): [int(c) for c in line.split()[1:]] for line in out.splitlines()
            if re.fullmatch(r"\s*\d(\s+\d+){10}", line)}
    # MNIST's test set has 980 zeros and 1,135 ones: every one predicted 3, so they sit in column 3.
    assert rows[0][3] == 980 and rows[1][3] == 1135 and sum(rows[0]) == 980


def test_evaluation_is_the_same_whatever_mode_the_model_was_left_in(test_set):
    images, labels = test_set[0][:2000], test_set[1][:2000]
    model = use.load_trained_model(SHIPPED, CPU)
    in_eval_mode = use.evaluate(model, images, labels, CPU)
    model.train()  # dropout on, BatchNorm on batch statistics: evaluation must switch both off
    assert use.evaluate(model, images, labels, CPU) == in_eval_mode


def test_a_photo_is_read_the_way_up_its_exif_orientation_says(tmp_path, test_set):
    from PIL import Image

    images, labels = test_set
    assert int(labels[11]) == 6
    six = STYLES["paper.jpg"](images[11].numpy(), np.random.default_rng(3))
    upside_down = six.transpose(Image.Transpose.ROTATE_180)  # stored upside down, it reads 9
    exif = Image.Exif()
    exif[0x0112] = 3  # Orientation: rotate 180 degrees to view
    path = tmp_path / "upside_down.jpg"
    upside_down.save(path, exif=exif)
    reading = use.read_digit(use.load_trained_model(SHIPPED, CPU), str(path), CPU)
    assert int(reading.probabilities.argmax()) == 6


@pytest.mark.slow
def test_predict_into_a_reader_that_stops_early_ends_quietly(tmp_path, test_set):
    """`predict *.png | head -1`: the rest of the output has nowhere to go, and that is no error."""
    from PIL import Image

    path = tmp_path / "digit.png"
    Image.fromarray(test_set[0][0].numpy()).save(path)
    command = [sys.executable, "mnist_99_4.py", "predict", *[str(path)] * 200]
    with subprocess.Popen(command, cwd=SHIPPED.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as run:
        first = run.stdout.readline()
        run.stdout.close()  # as `head -1` does once it has its line
        errors = run.stderr.read().decode()
    assert first.decode().startswith(f"{path}: {int(test_set[1][0])} (")
    assert run.returncode == 1 and errors == ""


def written_number(test_set, indices, gap=8):
    """Test digits side by side, dark ink on white, four times MNIST's size: (picture, the number)."""
    images, labels = test_set
    row = np.concatenate([np.pad(images[i].numpy(), ((6, 6), (gap // 2, gap // 2))) for i in indices], axis=1)
    picture = Image.fromarray(255 - np.kron(row, np.ones((4, 4), dtype=np.uint8)))
    return picture, "".join(str(int(labels[i])) for i in indices)


def test_predict_reads_a_written_number_and_shows_each_digits_box(test_set, tmp_path, capsys):
    picture, number = written_number(test_set, [0, 1, 2, 3, 4])
    picture.save(tmp_path / "number.png")
    assert mnist_99_4.main(["predict", "--number", "--show-crop", str(tmp_path / "number.png")]) == 0
    line = capsys.readouterr().out.strip()
    assert re.fullmatch(rf".*number\.png: {number} \((\d+\.\d% ){{4}}\d+\.\d%\)   \(what was read: .*\)", line), line
    seen = Image.open(tmp_path / "number.seen.png")
    assert seen.width >= 5 * 28 * 3 and seen.height > picture.height * min(1, 900 / picture.width)


def test_a_16_bit_scan_is_read_as_its_8_bit_copy(test_set, tmp_path, capsys):
    """A scanner's 16-bit gray PNG: Pillow's own conversion clips every pixel to white ("no ink found"), and
    the picture of what was read showed blank paper."""
    picture, number = written_number(test_set, [0, 1, 2, 3])
    eight_bit, sixteen_bit = tmp_path / "8.png", tmp_path / "16.png"
    picture.save(eight_bit)
    Image.fromarray(np.asarray(picture).astype(np.uint16) * 257).save(sixteen_bit)
    assert Image.open(sixteen_bit).mode.startswith("I")
    for flags in (["--show-crop"], ["--number", "--show-crop"]):
        assert mnist_99_4.main(["predict", *flags, str(eight_bit), str(sixteen_bit)]) == 0
        eight, sixteen = capsys.readouterr().out.splitlines()
        assert sixteen.replace("16.", "8.") == eight
        seen = [np.asarray(Image.open(tmp_path / f"{bits}.seen.png")) for bits in (8, 16)]
        assert np.array_equal(*seen)
    assert eight.startswith(f"{eight_bit}: {number} (")


def test_a_number_small_in_a_full_size_photo_is_read_from_its_own_pixels(test_set, tmp_path, capsys):
    """Test digits whose 28-pixel boxes are 70 pixels tall in a 4032x3024 phone photo are 8 pixels tall in its
    480-pixel working copy, too small to read: the number is read again from the photo's own pixels around
    it. Its boxes are in the photo's pixels, not in those of the JPEG decoded at an eighth of its size."""
    from digit_pictures import small_in_a_photo

    picture, number = written_number(test_set, [1, 0, 3, 4], gap=4)  # boxes 112 of its 160 pixels tall
    photo, (left, top, width, height) = small_in_a_photo(picture, 100, at=(1200, 1700))
    photo.save(tmp_path / "photo.jpg")
    assert mnist_99_4.main(["predict", "--number", "--show-crop", str(tmp_path / "photo.jpg")]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'photo.jpg'}: {number} (")
    digits = use.read_number(use.load_trained_model(SHIPPED, CPU), str(tmp_path / "photo.jpg"), CPU)
    for x, y, w, h in (digit.box for digit in digits):
        assert left <= x and x + w <= left + width and top <= y and y + h <= top + height
    # The picture of what was read shows the photo as decoded, an eighth of its size, and the boxes on it
    # (each box's number, drawn inside it from its corner, runs up to 12 pixels past a box this small).
    seen = np.asarray(Image.open(tmp_path / "photo.seen.png").convert("RGB")).astype(int)[:3024 // 8]
    rows, cols = np.nonzero((seen[..., 0] > 180) & (seen[..., 1] < 80) & (seen[..., 2] < 80))  # the red boxes
    assert rows.size and left / 8 - 2 <= cols.min() and cols.max() <= (left + width) / 8 + 12
    assert top / 8 - 2 <= rows.min() and rows.max() <= (top + height) / 8 + 12


@pytest.mark.parametrize("photo", [False, True])
def test_flecks_along_the_papers_edge_are_not_read_as_digits(test_set, tmp_path, capsys, photo):
    """Nine flecks of dirt along the paper's bottom edge, under a written number, scanned or photographed:
    more of them than digits, so the median mark is a fleck and no fleck is judged a speck, but they lie
    wholly outside the line's rows (`6766166160` when they were read)."""
    from digit_pictures import as_photo_file, paper_with_ink

    picture, number = written_number(test_set, [0, 1, 2, 3])
    ink = np.pad(1 - np.asarray(picture, dtype=np.float32) / 255, ((0, 80), (0, 0)))
    for k in range(9):
        top = ink.shape[0] - 14 - 9 * (k % 3)
        ink[top:top + 4, 20 + 50 * k:24 + 50 * k] = 1
    if not photo:
        assert read_drawn_number(ink, tmp_path, capsys) == number
        return
    rng = np.random.default_rng(0)
    as_photo_file(paper_with_ink(ink, rng, photo=True), rng, blur=0.5).save(tmp_path / "flecks.jpg")
    assert read_number_in(tmp_path / "flecks.jpg", capsys) == number


def test_without_number_a_written_number_is_said_to_be_one_and_not_read_as_one_digit(test_set, tmp_path, capsys):
    picture, number = written_number(test_set, [5, 6, 7, 8])
    picture.save(tmp_path / "year.png")
    assert mnist_99_4.main(["predict", str(tmp_path / "year.png")]) == 0
    line = capsys.readouterr().out.strip()
    assert re.fullmatch(r".*year\.png: \d \(unsure: \d+\.\d%, 4 digits side by side: read them with --number\)",
                        line), line


def test_several_lines_of_writing_are_refused_as_a_number_not_joined_into_tall_digits(tmp_path, capsys):
    """Three lines of ten strokes each, as a page of text: each column's strokes lie over one another, as a
    digit's pieces do, and were joined into ten tall 1s read at 100%."""
    page = np.full((600, 400), 255, dtype=np.uint8)
    for line in range(3):
        for k in range(10):
            page[50 + 180 * line:150 + 180 * line, 20 + 36 * k:28 + 36 * k] = 0
    Image.fromarray(page).save(tmp_path / "page.png")
    assert mnist_99_4.main(["predict", "--number", str(tmp_path / "page.png")]) == 1
    assert capsys.readouterr().err.strip().endswith("page.png: error: 3 lines of writing, not one: is this a number?")


def test_a_sloping_number_is_one_line_of_writing():
    """Each digit's rows overlap its neighbour's, so a number sloping up across its whole height is one line;
    a second line is one with paper between it and the first."""
    import number_image

    digits = [number_image.Mark(None, (30 * k, 100 - 15 * k, 20, 40)) for k in range(8)]  # 105 rows of slope
    assert number_image.lines_of_writing(digits) == 1
    assert number_image.lines_of_writing(digits + [number_image.Mark(None, (0, 200, 20, 40))]) == 2


def test_a_page_of_marks_or_a_blank_is_refused_in_one_line_as_a_number(tmp_path, capsys):
    dots = np.full((300, 900), 255, dtype=np.uint8)
    for k in range(40):  # forty strokes in a row: a page of writing, not a number
        dots[100:200, 10 + 22 * k:18 + 22 * k] = 0
    Image.fromarray(dots).save(tmp_path / "page.png")
    Image.new("L", (300, 100), 255).save(tmp_path / "blank.png")
    assert mnist_99_4.main(["predict", "--number", str(tmp_path / "page.png"), str(tmp_path / "blank.png")]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors[0].endswith("page.png: error: more than 12 marks (40): is this a number?")
    assert errors[1].endswith("blank.png: error: no ink found: the image is blank or has no contrast")


def test_the_judges_likeliest_cuts_are_the_spans_likeliest_all_to_be_one_digit():
    """A mark 30 columns wide on a grid twice as fine: whole it is unlikely one digit, its halves are likely
    each one, and a third of it (a 0's side read as a 1) is likely too, but leaves a span that is not."""
    import number_image

    parts = number_image.Parts(spans=[(0, 30), (0, 15), (15, 30), (0, 10), (10, 30)], pictures=None, width=30,
                               scale=2.0)
    likely = np.log([0.2, 0.9, 0.9, 0.95, 0.1])
    assert number_image.likeliest_spans(parts, likely) == [(0, 15), (15, 30)]
    # they meet at column 15 of the fine grid, 7.5 of the mark
    assert number_image.columns_between(parts, [(0, 15), (15, 30)]) == [8]
    assert number_image.likeliest_spans(parts, np.log([0.9, 0.5, 0.5, 0.95, 0.1])) == [(0, 30)]  # no cut
    # No path across the mark: it stays whole.
    assert number_image.likeliest_spans(parts._replace(spans=[(0, 15), (0, 10)]), [0.0, 0.0]) == [(0, 30)]


def test_a_digit_of_a_number_is_read_with_the_judges_share_and_the_models_doubt():
    """The model leans to 7 over 2 (55% to 45%) where the judges, who learned digits from numbers' spans,
    are sure of a 2: the digit reads 2, its probabilities still sum to one, and whether it is unsure is
    the model's to say (a best guess under half of the model's probability is, whatever the judges read)."""
    import digit_image
    import number_image

    picture = digit_image.Picture(np.zeros((28, 28), dtype=np.uint8), "")
    leaning = torch.full((10,), -20.0)
    leaning[7], leaning[2] = np.log(0.55), np.log(0.45)
    leaning += 10  # the same probabilities, with the evidence (logsumexp) of a digit the model knows
    judges = torch.zeros(10)
    judges[2] = 1.0
    reading = use.number_reading(picture, leaning, judges)
    assert int(reading.probabilities.argmax()) == 2
    share = number_image.JUDGES_SHARE
    assert reading.probabilities[2] == pytest.approx((1 - share) * 0.45 + share, abs=1e-4)
    assert float(reading.probabilities.sum()) == pytest.approx(1.0, abs=1e-5)
    assert not reading.unsure
    doubtful = torch.full((10,), 10.0)  # the model: ten digits alike
    assert use.number_reading(picture, doubtful, judges).unsure


def test_only_spans_on_a_path_across_the_mark_are_offered():
    """A span that no path of spans from the mark's left edge to its right passes through can never be cut
    out, so it is not drawn for the judge: here those from column 0 to 10 and on, which lead nowhere past
    25, and the span from 5, where no span from the left edge ends."""
    import number_image

    spans = [(0, 30), (0, 15), (15, 30), (0, 10), (10, 20), (20, 25), (5, 30)]
    assert number_image.on_a_path(spans, 30) == [(0, 30), (0, 15), (15, 30)]


def test_the_model_reads_a_span_unless_no_reading_could_put_it_on_the_likeliest_cuts():
    """A mark whole or in halves, the judge's log-probabilities known: whatever the model reads, the whole
    scores at least -1 + LEAST_SURE. Halves that could at best tie it are read; halves that could not
    reach it are not."""
    import number_image

    parts = number_image.Parts(spans=[(0, 30), (0, 15), (15, 30)], pictures=None, width=30, scale=2.0)

    def may_be_likeliest(whole, half):
        highest = [whole, half, half]
        return number_image.may_be_likeliest(parts, highest, [score + number_image.LEAST_SURE for score in highest])

    assert may_be_likeliest(-1.0, -4.0) == [True, False, False]
    assert may_be_likeliest(-1.0, (-1.0 + number_image.LEAST_SURE) / 2) == [True, True, True]


def test_the_spans_left_unread_never_change_the_cuts(test_set):
    """Digits that touch or overlap, each mark cut as if every span were drawn and each scored in full, by
    the judges and the model: the reader's cuts are the same, though it draws only the spans on a path
    across the mark and asks the model only of those that could lie on the likeliest cuts."""
    import number_image
    from digit_pictures import number_ink

    images, labels = test_set
    model, judge = use.load_trained_model(SHIPPED, CPU), use.number_judge(CPU)
    left_out = model_spared = 0
    for picks, gap_kind in [([3, 2, 1, 18], "touching"), ([3, 2, 1, 18], "overlapping"),
                            ([15, 37, 40, 15], "overlapping"),
                            ([3, 31, 3, 37], "overlapping")]:  # a 0 and a 1 one digit to the judge alone (SURE_WEIGHT)
        ink = number_ink([images[i].numpy() for i in picks], np.random.default_rng(0), gap_kind)
        ink_map, marks, strongest, _, _ = number_image.marks_of(Image.fromarray(((1 - ink) * 255).astype(np.uint8)))
        for mark in marks:
            every = number_image.possible_parts(ink_map, strongest, mark, every_span=True)
            pictures = torch.from_numpy(every.pictures)
            not_one = use.predict_batches(judge, pictures, CPU)[:, number_image.NOT_ONE_DIGIT].exp()
            one_digit = torch.log1p(-not_one.clamp(max=1 - 1e-6))
            in_full = one_digit + number_image.SURE_WEIGHT * use.predict_batches(model, pictures, CPU).max(dim=1).values
            parts = number_image.possible_parts(ink_map, strongest, mark)
            (_, scores), = use.span_scores(model, judge, [parts], CPU)
            assert number_image.likeliest_spans(parts, scores) == number_image.likeliest_spans(every, in_full.tolist())
            full_score = dict(zip(every.spans, in_full.tolist()))
            left_out += len(every.spans) - len(parts.spans)
            model_spared += sum(abs(score - full_score[span]) > 1e-4 for span, score in zip(parts.spans, scores))
    assert left_out > 0 and model_spared > 0

def read_drawn_number(ink, tmp_path, capsys):
    """What `predict --number` reads in an ink map (0-1) drawn as dark ink on white (read_number_in)."""
    path = tmp_path / "number.png"
    Image.fromarray(((1 - ink) * 255).astype(np.uint8)).save(path)
    return read_number_in(path, capsys)


def read_number_in(path, capsys):
    """What `predict --number` reads in a picture: the number its line gives after the picture's path,
    before the digits' confidences."""
    assert mnist_99_4.main(["predict", "--number", str(path)]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"{path}: ") and " (" in line, line
    return line[len(f"{path}: "):].split(" (")[0]


@pytest.mark.parametrize("picks, gap_kind", [
    ([3, 2, 1, 18], "touching"), ([3, 2, 1, 18], "overlapping"),  # 0 1 2 3: a 0 beside a 1, the 1 easiest to swallow
    ([15, 37], "overlapping"), ([40, 15], "overlapping"),  # 5 1 and 1 5 (`5`, `6` without the doubt at CUT_STEP 0.1)
    # 0 1 twice: one digit to the judge alone (read `0` and `9` without the model's doubt); the model, less sure
    # of what it reads in the pair than in each digit alone, has it cut (number_image.SURE_WEIGHT)
    ([3, 31], "overlapping"), ([3, 37], "overlapping")])
def test_digits_that_touch_or_overlap_are_cut_apart_and_read(test_set, tmp_path, capsys, picks, gap_kind):
    """Test digits written touching (or overlapping by a pixel or two): one mark, or a few, cut where the
    judge and the model find one digit on each side."""
    from digit_pictures import number_ink

    images, labels = test_set
    ink = number_ink([images[i].numpy() for i in picks], np.random.default_rng(0), gap_kind)
    assert read_drawn_number(ink, tmp_path, capsys) == "".join(str(int(labels[i])) for i in picks)


@pytest.mark.parametrize("index", [0, 1, 3])  # a 7, a 2 and a 0
def test_a_digit_written_flat_is_offered_whole_and_read_as_one_digit(test_set, tmp_path, capsys, index):
    """A digit nearly three times as wide as it is tall (wider than any span the judge is asked about
    inside a mark) is still offered whole, and read as the one digit it is, not cut in two."""
    import number_image

    images, labels = test_set
    flat = Image.fromarray(255 - images[index].numpy()).resize((28 * 8, 28 * 3), Image.BILINEAR)
    picture = Image.new("L", (flat.width + 40, flat.height + 40), 255)
    picture.paste(flat, (20, 20))
    ink, marks, strongest, _, _ = number_image.marks_of(picture)
    parts = number_image.possible_parts(ink, strongest, marks[0])
    _, _, width, height = marks[0].box
    assert len(marks) == 1 and width > number_image.WIDEST_PART * height and (0, parts.width) in parts.spans
    picture.save(tmp_path / "flat.png")
    assert read_number_in(tmp_path / "flat.png", capsys) == str(int(labels[index]))


def drawn_segments(digits, first=0, box=(300, 300), step=200, origin=(50, 0)):
    """Strokes of digits (each a list of strokes in a 0-1 box) as pen segments: each digit in a `box` (width,
    height) of pixels, the k-th (from `first`) `step` pixels right of the one before, the first at `origin`."""
    lines = []
    for k, digit in enumerate(digits, start=first):
        for stroke in digit:
            points = [(origin[0] + step * k + box[0] * x, origin[1] + box[1] * y) for x, y in stroke]
            lines += list(zip(points, points[1:]))
    return lines


@pytest.mark.parametrize("pen", [4, 26])  # a ballpoint's and a marker's strokes, in pixels
def test_a_one_written_with_a_long_flag_is_one_digit_not_two(tmp_path, capsys, pen):
    """1971 with its 1s written as much of Europe writes them, a long flag from the top: the flag alone
    is a slanted 1 to the judge, but it is a piece of the digit, not a digit of its own."""
    from digit_pictures import arc, pen_ink

    flagged_one = [[(0.25, 0.35), (0.6, 0.0), (0.6, 1.0)]]
    nine = [arc(0.5, 0.25, 0.25, 0.25, 0, 360) + [(0.75, 0.25), (0.65, 1.0)]]
    seven = [[(0.15, 0.05), (0.85, 0.05), (0.4, 1.0)], [(0.3, 0.5), (0.75, 0.5)]]
    segments = drawn_segments([flagged_one, nine, seven, flagged_one], box=(220, 300), step=260, origin=(150, 100))
    assert read_drawn_number(pen_ink(segments, (1300, 500), pen), tmp_path, capsys) == "1971"


@pytest.mark.parametrize("pen", [4, 26])  # a ballpoint's and a marker's strokes, in pixels
def test_a_decimal_point_or_comma_is_read_as_a_point_and_a_dot_elsewhere_is_not(tmp_path, capsys, pen):
    """12.5 and 3,75 as a meter or a price is written: the point, low between two digits, is read as one
    (a ballpoint's was dropped as a speck, a marker's joined the 2 as its piece: 125 either way). A dot
    high between two digits, or after the last, is not a point."""
    from digit_pictures import MOUSE_DIGITS, arc, pen_ink

    dot = [arc(0.5, 0.85, 0.06, 0.06, 0, 360, steps=12)]  # in a box a third as wide as a digit's
    comma = [[(0.6, 0.8), (0.35, 0.98)]]
    high_dot = [arc(0.5, 0.2, 0.06, 0.06, 0, 360, steps=12)]

    def drawn(*marks):  # digits, and marks in a narrow box of their own between them
        segments, left = [], 100
        for mark in marks:
            width = 240 if isinstance(mark, int) else 80
            strokes = MOUSE_DIGITS[mark] if isinstance(mark, int) else mark
            segments += drawn_segments([strokes], box=(width * 220 // 240, 300), origin=(left, 60))
            left += width
        return pen_ink(segments, (left + 100, 420), pen)

    assert read_drawn_number(drawn(1, 2, dot, 5), tmp_path, capsys) == "12.5"
    assert read_drawn_number(drawn(3, comma, 7, 5), tmp_path, capsys) == "3.75"
    assert read_drawn_number(drawn(2, 0, high_dot, 2, 6), tmp_path, capsys) == "2026"
    assert read_drawn_number(drawn(1, 2, dot), tmp_path, capsys) == "12"


def read_dev_numbers(test_set, indices, tmp_path, capsys, kind=(2, "overlapping", (4, 4), True)):
    """(number, what `predict --number` reads) for some of the benchmark's numbers of dev seed 1
    (`benchmarks/read_numbers.py --seed 1`), by their index there. `kind`: its index in read_numbers.KINDS,
    its gap, its digit counts and whether it is smooth (by default overlapping 4-digit numbers)."""
    from digit_pictures import number_set

    k, gap_kind, lengths, smooth = kind
    images, labels = (t.numpy() for t in test_set)
    numbers = number_set(images, labels, max(indices) + 1, 1 * 100 + k, gap_kind, lengths, smooth=smooth)
    read = []
    for index in indices:
        image, truth = numbers[index]
        image.save(tmp_path / f"{truth}.png")
        read.append((truth, read_number_in(tmp_path / f"{truth}.png", capsys)))
    return read


def test_specks_and_flecks_of_digits_are_not_read_as_points(test_set, tmp_path, capsys):
    """Dev numbers whose speck or fleck lies low between two digits, each once read as a point (round 28): a
    speck thinner than the strokes (2915 read 29.15), the broken-off end of a 2's tail beside it (8029 read
    802.9), and a pale 5 written as a dash and a dot, the dot alone no point (9692535 read 9692.2)."""
    separated, blocky, longer = (0, "separated", (4, 4), True), (7, "separated", (4, 4), False), \
        (4, "separated", (2, 8), True)
    for kind, index in [(separated, 104), (blocky, 137), (longer, 56)]:
        ((truth, read),) = read_dev_numbers(test_set, [index], tmp_path, capsys, kind)
        assert "." not in read, (truth, read)


def test_a_one_overlapping_its_neighbour_is_a_digit_of_its_own(test_set, tmp_path, capsys):
    """Numbers whose 1 the first judge alone keeps whole with the digit beside it (3541 read 354, 8210 read
    820, 5104 read 504): the second judge, taught every span of two digits, is sure they are two, and the
    vote cuts them."""
    for truth, read in read_dev_numbers(test_set, [46, 94, 176], tmp_path, capsys):
        assert read == truth


def test_the_models_doubt_chooses_between_cuts_the_judges_find_alike(test_set, tmp_path, capsys):
    """Without the model's doubt in a span's score (SURE_WEIGHT), 7521 reads 7721 and 7013 reads 793."""
    for truth, read in read_dev_numbers(test_set, [4, 107], tmp_path, capsys):
        assert read == truth


def test_a_span_much_shorter_than_the_ink_around_it_is_not_offered_as_a_digit(test_set, tmp_path, capsys):
    """Offered spans as short as a 7's flag (PIECE_HEIGHT), 2475 reads 244751 and 8414 reads 8214."""
    for truth, read in read_dev_numbers(test_set, [132, 182], tmp_path, capsys):
        assert read == truth


@pytest.mark.parametrize("pen", [4, 26])  # a ballpoint's and a marker's strokes, in pixels
def test_ones_written_as_straight_upright_strokes_are_digits_not_a_papers_lines(tmp_path, capsys, pen):
    """2011 with its 1s one straight upright stroke each: two long thin upright runs are not squared paper's
    lines where no lines run across (the ballpoint's 1s were taken out as lines: `20`)."""
    from digit_pictures import MOUSE_DIGITS, pen_ink

    upright_one = [[(0.5, 0.0), (0.5, 1.0)]]
    segments = drawn_segments([MOUSE_DIGITS[2], MOUSE_DIGITS[0], upright_one, upright_one], box=(220, 300), step=260,
                              origin=(150, 60))
    assert read_drawn_number(pen_ink(segments, (1300, 420), pen), tmp_path, capsys) == "2011"


def test_upright_runs_are_a_papers_lines_only_beside_lines_across():
    import digit_image

    squared = np.zeros((200, 300), dtype=bool)
    squared[20::40, :] = squared[:, 20::40] = True
    lines = digit_image.printed_lines(squared)
    assert lines.all(axis=0)[20::40].all()  # every upright line, top to bottom
    assert lines.all(axis=1)[20::40].all()  # and every line across
    upright = np.zeros((200, 300), dtype=bool)
    upright[20:180, 100] = upright[20:180, 200] = True
    assert not digit_image.printed_lines(upright).any()


@pytest.mark.parametrize("marker, pen, shade", [
    (30, 2, 1.0),    # 26 in a fine pen beside 20 in a broad marker
    (26, 26, 0.35),  # 26 in a pale ink (a pencil) beside 20 in a dark one, both markers
    (4, 4, 0.35)])   # the same with ballpoints
def test_digits_written_finer_or_paler_than_the_rest_are_read_not_lost(tmp_path, capsys, marker, pen, shade):
    """2026 whose 26 is written finer or paler than its 20: a digit's strokes are found at half its own
    strongest ink, not the number's, so the fainter digits are read (they were lost without a word: `20`)."""
    from digit_pictures import MOUSE_DIGITS, pen_ink

    dark = pen_ink(drawn_segments([MOUSE_DIGITS[2], MOUSE_DIGITS[0]]), (1000, 320), marker)
    pale = shade * pen_ink(drawn_segments([MOUSE_DIGITS[2], MOUSE_DIGITS[6]], first=2), (1000, 320), pen)
    assert read_drawn_number(np.maximum(dark, pale), tmp_path, capsys) == "2026"


def test_a_digit_paler_than_the_rest_keeps_its_palest_stroke(tmp_path, capsys):
    """2027 whose 7 is written in a drying marker: its stem at 60% of the other digits' ink, its bar at 35%,
    under half the number's strongest but over half the 7's own, so the bar is part of the 7 (`2021`
    without it), all of it, though its left end lies nearer the 2 than the 7's stem."""
    import number_image
    from digit_pictures import MOUSE_DIGITS, pen_ink

    dark = pen_ink(drawn_segments([MOUSE_DIGITS[2], MOUSE_DIGITS[0], MOUSE_DIGITS[2]]), (1000, 320), 26)
    stem = 0.6 * pen_ink(drawn_segments([[[(0.72, 0.2), (0.6, 0.84)]]], first=3), (1000, 320), 26)
    bar = 0.35 * pen_ink(drawn_segments([[[(0.2, 0.2), (0.72, 0.2)]]], first=3), (1000, 320), 26)
    assert read_drawn_number(np.maximum(dark, np.maximum(stem, bar)), tmp_path, capsys) == "2027"
    _, marks, _, scale, _ = number_image.marks_of(Image.open(tmp_path / "number.png"))
    assert marks[-1].box[0] * scale < 50 + 3 * 200 + 0.2 * 300  # the 7 begins where its bar does (697)


def test_a_bar_written_apart_above_its_digit_stays_part_of_it(tmp_path, capsys):
    """2025 in a ballpoint, the 5's bar a separate stroke above its body and above every other digit: a piece
    so near the line is part of a digit, not a fleck outside it (number_image.LINE_MARGIN)."""
    import number_image
    from digit_pictures import MOUSE_DIGITS, arc, pen_ink

    five = [[(0.42, 0.1), (0.74, 0.1)], [(0.37, 0.2), (0.34, 0.47)] + arc(0.49, 0.63, 0.18, 0.17, -125, 150)]
    ink = pen_ink(drawn_segments([MOUSE_DIGITS[2], MOUSE_DIGITS[0], MOUSE_DIGITS[2], five]), (1000, 320), 4)
    assert read_drawn_number(ink, tmp_path, capsys) == "2025"
    _, marks, _, scale, _ = number_image.marks_of(Image.open(tmp_path / "number.png"))
    assert marks[-1].box[1] * scale <= 0.1 * 300 + 4  # the 5 begins at its bar


def test_faint_ink_between_two_digits_goes_to_the_nearer_one(tmp_path, capsys):
    """27 whose 7 is in a drying marker (stem at 60%, bar at 35%) and whose pen dragged faintly from the 2
    to the 7's bar: one piece of faint ink holds both digits, so each of its pixels is the nearer digit's,
    and the bar, over half the 7's own ink though under half the 2's, stays the 7's (`21` where the piece
    goes to the first digit it holds)."""
    from digit_pictures import MOUSE_DIGITS, pen_ink

    size = (700, 320)
    two = pen_ink(drawn_segments([MOUSE_DIGITS[2]]), size, 26)
    stem = 0.6 * pen_ink(drawn_segments([[[(0.72, 0.2), (0.6, 0.84)]]], first=1), size, 26)
    bar = 0.35 * pen_ink(drawn_segments([[[(0.4, 0.2), (0.72, 0.2)]]], first=1), size, 26)
    drag = 0.3 * pen_ink([((266, 240), (370, 60))], size, 8)  # from the 2's foot to the bar's left end
    assert read_drawn_number(np.maximum.reduce([two, stem, bar, drag]), tmp_path, capsys) == "27"


@pytest.mark.parametrize("judge", list(use.JUDGES))
def test_the_judge_is_refused_where_a_digit_model_is_asked_for(capsys, judge):
    assert mnist_99_4.main(["evaluate", "--checkpoint", str(judge)]) == 2
    assert "a Net of 11 classes, not 10 (the number reader's judge, not a digit model)" in capsys.readouterr().err


def test_the_judges_lessons_are_whole_digits_and_what_is_not_one_digit(test_set):
    """Three separated test digits: each whole digit is a span labelled with its digit, and the spans
    that cut a digit or take in two are labelled not one digit."""
    import number_image
    from number_judge import labelled_spans

    images, labels = test_set
    picks = [3, 4, 7]  # 0 4 9
    pictures, classes, pairs = labelled_spans(images[picks].numpy(), labels[picks].numpy(), np.random.default_rng(0),
                                              "separated")
    assert len(pictures) == len(classes) == len(pairs) and all(p.shape == (28, 28) for p in pictures)
    assert {0, 4, 9} <= set(classes) <= {0, 4, 9, number_image.NOT_ONE_DIGIT}
    assert classes.count(number_image.NOT_ONE_DIGIT) > len(classes) / 2  # most spans are pieces of a digit
    assert not any(pairs)  # only --every-pair marks the spans of two digits


def test_every_pair_marks_the_spans_of_two_overlapping_digits_not_one_digit(test_set):
    """The second judge's lessons (--every-pair): a span holding most of two overlapping digits is a pair,
    always labelled not one digit, and only such spans are."""
    import number_image
    from number_judge import TWO_DIGITS, labelled_spans

    images, labels = test_set
    picks = [3, 4, 7]  # 0 4 9
    def number():  # the same number each time: the rng places its digits
        return images[picks].numpy(), labels[picks].numpy(), np.random.default_rng(0), "overlapping"

    _, classes, pairs = labelled_spans(*number(), every_pair=True)
    assert TWO_DIGITS <= 0.5 and any(pairs) and not all(pairs)
    assert all(kind == number_image.NOT_ONE_DIGIT for kind, pair in zip(classes, pairs) if pair)
    _, classes_alone, pairs_alone = labelled_spans(*number())  # the first judge's lessons of the same number
    assert not any(pairs_alone) and len(classes_alone) <= len(classes)


@pytest.mark.slow
def test_number_judge_py_trains_a_judge_that_loads_with_its_checksum(mnist_dir, tmp_path):
    out = tmp_path / "judge.pt"
    run = subprocess.run([sys.executable, "number_judge.py", "--numbers", "12", "--epochs", "1", "--data-dir",
                          str(mnist_dir), "--out", str(out)], cwd=SHIPPED.parent, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert re.search(r"^\d+ spans, \d+ of them one digit$", run.stdout, re.MULTILINE), run.stdout
    judge = use.load_trained_model(out, CPU, classes=11)  # checks the recorded SHA-256 too
    assert judge.classifier.out_channels == 11
    assert (tmp_path / "judge.pt.sha256").read_text().split() == [runs.file_sha256(out), "judge.pt"]


def test_without_the_judge_a_number_is_refused_in_one_line_and_a_digit_still_read(test_set, tmp_path, monkeypatch,
                                                                                   capsys):
    picture, _ = written_number(test_set, [5, 6, 7, 8])
    picture.save(tmp_path / "year.png")
    first, second = use.JUDGES
    monkeypatch.setattr(use, "JUDGES", {first: use.JUDGES[first], tmp_path / second.name: use.JUDGES[second]})
    use.number_judge.cache_clear()
    try:
        assert mnist_99_4.main(["predict", "--number", str(tmp_path / "year.png")]) == 2
        assert re.fullmatch(r"error: .*number_judge_pairs\.pt: no such checkpoint file \(a judge of the number "
                            r"reader: `python number_judge\.py --every-pair --out number_judge_pairs\.pt` makes it "
                            r"again\)\n", capsys.readouterr().err)
        assert mnist_99_4.main(["predict", str(tmp_path / "year.png")]) == 0  # one digit needs no judge
        assert re.fullmatch(r".*year\.png: \d \(unsure: \d+\.\d%, other marks beside it\)\n", capsys.readouterr().out)
    finally:
        use.number_judge.cache_clear()
