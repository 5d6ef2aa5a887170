"""Any pen: thin ballpoints and fat markers read alike, and what is not a digit is called unsure."""
import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

import data
import digit_image
import mnist_99_4
import use
from digit_pictures import non_digit_set, pen_digit_set, pen_ink, strokes_centreline

CPU = torch.device("cpu")
SEVEN = [[(0.3, 0.2), (0.7, 0.2), (0.45, 0.85)]]  # a 7 as a pen draws it, in a 0-1 box


@pytest.fixture(scope="module")
def test_set(mnist_dir):
    return data.load_mnist(mnist_dir, train=False)


@pytest.fixture(scope="module")
def model():
    return use.load_trained_model(use.SHIPPED_WEIGHTS, CPU)


def drawn_seven(pen_width, side=1000):
    """A 7 drawn with a pen `pen_width` pixels wide on a side x side white page, as a PNG file."""
    ink = pen_ink(strokes_centreline(SEVEN, side), (side, side), pen_width)
    buffer = io.BytesIO()
    Image.fromarray(((1 - ink) * 255).astype(np.uint8)).save(buffer, "PNG")
    buffer.seek(0)
    return buffer


def test_a_ballpoint_and_a_marker_give_the_model_the_same_strokes():
    from scipy import ndimage

    thin = digit_image.load_digit(drawn_seven(2)).astype(np.float32) / 255     # 0.3% of the 7's height
    fat = digit_image.load_digit(drawn_seven(150)).astype(np.float32) / 255    # 23%, a marker
    for seen in (thin, fat):  # full-brightness cores, and as much ink as most of MNIST's own 7s (62-122)
        assert seen.max() == 1.0 and 55 <= seen.sum() <= 125
    # More alike than the ballpoint 7 is to MNIST's digits of any one class on average (at most 0.61, its 1s);
    # the marker's corners stay rounder, as a marker's do.
    alike = np.corrcoef(ndimage.gaussian_filter(thin, 1).ravel(), ndimage.gaussian_filter(fat, 1).ravel())[0, 1]
    assert alike >= 0.7


@pytest.mark.parametrize("pen_width", [2, 4, 8, 30, 90, 150])
def test_a_seven_reads_as_seven_whatever_the_pen(model, pen_width):
    reading = use.read_digit(model, drawn_seven(pen_width), CPU)
    assert int(reading.probabilities.argmax()) == 7 and not reading.unsure


@pytest.mark.slow
def test_thin_pen_digits_on_phone_sized_images_are_read(test_set, model):
    images, labels = test_set
    # Pens 2-6 px on 600-1200 px pictures, the digit 150-400 px high: a ballpoint, photographed.
    rng = np.random.default_rng(5)
    right = 0
    for part in range(20):
        pen, height = rng.uniform(2, 6), rng.uniform(150, 400)
        image, label, _ = pen_digit_set(images, labels, 1, 500 + part, pen_share=pen / height,
                                        canvas_side=int(rng.integers(600, 1201)))[0]
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        buffer.seek(0)
        right += int(use.read_digit(model, buffer, CPU).probabilities.argmax()) == label
    assert right >= 19, f"{right}/20 thin-pen digits read right"


@pytest.mark.slow
def test_words_shapes_and_noise_are_mostly_called_unsure(model):
    pictures = non_digit_set(24, seed=5)
    flagged = 0
    for image, _ in pictures:
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        buffer.seek(0)
        try:
            flagged += use.read_digit(model, buffer, CPU).unsure
        except digit_image.NoDigitError:
            flagged += 1
    assert flagged >= 16, f"{flagged}/24 non-digits flagged"


def test_real_digits_are_rarely_called_unsure(test_set, model):
    images, labels = test_set
    flagged = right = 0
    for image, label in zip(images[:300], labels[:300]):
        buffer = io.BytesIO()
        Image.fromarray(image.numpy()).save(buffer, "PNG")
        buffer.seek(0)
        reading = use.read_digit(model, buffer, CPU)
        flagged += reading.unsure
        right += int(reading.probabilities.argmax()) == int(label)
    assert flagged <= 6 and right >= 294, f"{flagged} flagged, {right} right of 300"


def test_predict_says_unsure_beside_its_best_guess(tmp_path, capsys):
    word = tmp_path / "word.png"
    canvas = Image.new("L", (600, 200), 255)
    from PIL import ImageDraw, ImageFont
    ImageDraw.Draw(canvas).text((20, 40), "hello", fill=0, font=ImageFont.load_default(110))
    canvas.save(word)
    seven = tmp_path / "seven.png"
    seven.write_bytes(drawn_seven(3).getvalue())

    assert mnist_99_4.main(["predict", str(word), str(seven)]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(rf"{re.escape(str(word))}: \d \(unsure: \d+\.\d%, [a-z' ]+\)", lines[0]), lines[0]
    assert re.fullmatch(rf"{re.escape(str(seven))}: 7 \(\d+\.\d%\)", lines[1]), lines[1]


def test_a_peaked_guess_with_little_evidence_is_unsure_by_its_digits_own_bound():
    """Small logits can still make a peaked softmax; their size is the evidence, and each digit has its
    own bound (a 1, with little ink, is read with less)."""
    def guess(digit, evidence):  # logits whose best is `digit` at 99.8%, and whose log-sum-exp is `evidence`
        logits = torch.full((10,), -3.0)
        logits[digit] = 3.0
        return logits + evidence - torch.logsumexp(logits, 0)

    one, three = (use.LEAST_EVIDENCE[d] for d in (1, 3))
    assert one < three
    between = (one + three) / 2
    assert use.model_doubt(guess(1, between)) == ""
    assert use.model_doubt(guess(3, between)) == "unlike the digits it learned"
    assert use.model_doubt(guess(3, three + 0.01)) == ""
    assert use.model_doubt(torch.zeros(10)) == "no digit stands out"


def test_a_second_digit_beside_the_first_is_doubted_as_other_marks(test_set):
    """Two digits side by side are not one: the reader keeps one, and says there is more."""
    images = test_set[0]

    def read(array):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "PNG")
        buffer.seek(0)
        return digit_image.read_picture(buffer)

    pair = np.hstack([images[0].numpy(), np.zeros((28, 14), np.uint8), images[1].numpy()])
    assert read(pair).doubt == "other marks beside it"
    assert read(images[0].numpy()).doubt == ""


def test_a_numbers_digit_keeps_the_faint_stretch_joined_to_its_stroke_and_no_other_faint_ink():
    """A stroke fading to 0.35 of the strongest ink beyond its soft edge (MNIST's scans fade so): a
    number's digit keeps the faint stretch; a faint blob apart from the stroke is not its ink."""
    ink = np.zeros((40, 60), dtype=np.float32)
    ink[5:35, 10:14] = 1.0     # the stroke
    ink[30:34, 14:30] = 0.35   # its faint tail, joined to it
    ink[5:9, 40:50] = 0.35     # faint ink elsewhere
    strokes = ink > 0.5
    plain = digit_image.soft_crop(ink, 1.0, strokes)
    faint = digit_image.soft_crop(ink, 1.0, strokes, faint=True)
    assert plain.shape == faint.shape == (30, 4)  # the crop is the strokes' box either way
    wide = np.zeros((40, 60), dtype=bool)
    wide[5:35, 10:50] = strokes[5:35, 10:50]
    wide[39, 55] = True  # a speck of stroke far off, so the box takes in the tail and the blob
    plain, faint = digit_image.soft_crop(ink, 1.0, wide), digit_image.soft_crop(ink, 1.0, wide, faint=True)
    assert faint[25:29, 10:20].min() == pytest.approx(0.35) and plain[25:29, 10:20].max() == 0
    assert faint[0:4, 32:38].max() == plain[0:4, 32:38].max() == 0


@pytest.mark.parametrize("pen", [4, 26])  # a ballpoint's and a marker's strokes, on digits 200 pixels tall
def test_a_pen_numbers_digits_ink_meets_where_they_touch_or_overlap_and_not_where_separated(pen):
    """digit_pictures.pen_number places digits by their ink, not their boxes: 4141's four digits are four
    pieces of ink when separated, and one piece when they touch or overlap."""
    from scipy import ndimage

    from digit_pictures import pen_number

    for gap_kind, pieces in (("separated", 4), ("touching", 1), ("overlapping", 1)):
        ink = pen_number([4, 1, 4, 1], np.random.default_rng(0), gap_kind, pen)
        assert ndimage.label(ink > 0.5, structure=np.ones((3, 3)))[1] == pieces, gap_kind
