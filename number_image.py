"""Split a picture of a written number into its digits, left to right, each prepared as digit_image
prepares one digit.

1. find the ink as for one digit (digit_image.ink_map): paper, shadows, ruled lines and light or
   dark ink alike; pieces of ink a few pixels apart are one stroke;
2. drop specks (a dot, a fleck of dirt) and a page's edges;
3. pieces that lie over one another, left to right, are one digit: a 4 or a 5 written in two
   strokes, a 7 with a bar; a piece much shorter than the line (a 5's bar off to the side, a
   stroke broken by a faint stretch) joins its nearer neighbour;
4. a mark wider than a digit may be digits that touch: `possible_cuts` offers it cut into 2, 3 or 4
   at the columns with the least ink, and the reader (use.read_number) keeps the reading the model is
   surest of, a reading as one digit of a mark far wider than a digit being worth less.

Each digit's crop then goes through digit_image's own steps (strokes evened, 20-pixel box, centred).
"""
import itertools
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

import digit_image as di

MOST_MARKS = 12       # a number of more marks than this is a page of writing, not a number
SAME_DIGIT = 0.5      # pieces overlapping left to right by this share of the narrower are one digit
SPECK = 0.15          # a piece with less ink than this share of the median mark's is a speck
PIECE_HEIGHT = 0.6    # of the line's height: a mark shorter than this is part of a digit (a 5's bar)
MOST_PARTS = 4        # a mark is cut into at most this many digits
MOST_CUTS = 5         # the places a mark may be cut: the emptiest columns, clear of one another
NARROWEST = 0.2       # of the line's height: no part of a cut is narrower (a 1 is about a quarter)
# Chosen on the dev numbers (seed 1 of benchmarks/read_numbers.py; benchmarks/RESEARCH.md, "Numbers"):
ONE_DIGIT_WIDTH = 1.2  # of the line's height: a narrower mark is one digit, never cut (a 0's halves read as
                       # two confident 1s)
WIDE_DIGIT = 1.2      # of the line's height: a reading of a mark as one digit wider than this...
WIDTH_COST = 2.0      # ...loses this much log-probability for each line height of width beyond it


class NumberError(ValueError):
    """A picture that is not a number: too many marks."""


class Mark(NamedTuple):
    mask: np.ndarray  # the mark's pixels in the working copy
    box: tuple        # (x, y, width, height) in the working copy


def mark_of(mask):
    rows, cols = np.nonzero(mask)
    return Mark(mask, (int(cols.min()), int(rows.min()), int(cols.max() - cols.min() + 1),
                       int(rows.max() - rows.min() + 1)))


def slices(box):
    """A box (x, y, width, height) as the row and column slices digit_image's boxes are."""
    x, y, width, height = box
    return slice(y, y + height), slice(x, x + width)


def overlap(a, b):
    """How much two boxes overlap left to right, as a share of the narrower one's width."""
    shared = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    return max(shared, 0) / min(a[2], b[2])


def number_marks(ink):
    """The number's marks, left to right: each a digit, or digits that touch. Raises NoDigitError for no
    ink and NumberError for more marks than a number has."""
    strongest = di.strongest_ink(ink)
    _, labels, count = di.stroke_pieces(ink, strongest)
    pieces = [mark_of(labels == i) for i in range(1, count + 1)]
    pieces = [p for p in pieces if not di.page_edge(slices(p.box), ink.shape)]
    if not pieces:
        raise di.NoDigitError(di.NO_INK)
    pieces.sort(key=lambda p: p.box[0] + p.box[2] / 2)
    marks = [pieces[0]]
    for piece in pieces[1:]:  # a piece over the previous mark is part of its digit
        if overlap(marks[-1].box, piece.box) >= SAME_DIGIT:
            marks[-1] = mark_of(marks[-1].mask | piece.mask)
        else:
            marks.append(piece)
    ink_of = [int(mark.mask.sum()) for mark in marks]
    marks = [mark for mark, amount in zip(marks, ink_of) if amount >= SPECK * np.median(ink_of)]
    marks = joined_pieces(marks)
    if len(marks) > MOST_MARKS:
        raise NumberError(f"more than {MOST_MARKS} marks ({len(marks)}): is this a number?")
    return marks, strongest


def joined_pieces(marks):
    """Marks much shorter than the line (a 5's bar, a broken stroke) joined to the nearer neighbour."""
    height = line_height(marks) if marks else 0
    while len(marks) > 1:
        short = [i for i, mark in enumerate(marks) if mark.box[3] < PIECE_HEIGHT * height]
        if not short:
            break
        i = short[0]
        gaps = {j: gap_between(marks[i].box, marks[j].box) for j in (i - 1, i + 1) if 0 <= j < len(marks)}
        j = min(gaps, key=gaps.get)
        joined = mark_of(marks[i].mask | marks[j].mask)
        marks = [m for k, m in enumerate(marks) if k not in (i, j)]
        marks.insert(min(i, j), joined)
    return marks


def gap_between(a, b):
    """The horizontal gap between two boxes, negative where they overlap."""
    return max(a[0], b[0]) - min(a[0] + a[2], b[0] + b[2])


def line_height(marks):
    """The height of the line of digits: the median mark's."""
    return float(np.median([mark.box[3] for mark in marks]))


def cut_at(mark, cuts):
    """`mark` cut at these columns (from its left edge) into marks; None where a part holds no ink."""
    x, width = mark.box[0], mark.box[2]
    pieces = []
    for a, b in zip([0, *cuts], [*cuts, width]):
        part = np.zeros_like(mark.mask)
        part[:, x + a:x + b] = mark.mask[:, x + a:x + b]
        if not part.any():
            return None
        pieces.append(mark_of(part))
    return pieces


def cut_columns(mark, height):
    """Where `mark` may be cut: the columns of least ink around it, each a local minimum of the ink per
    column, at least NARROWEST of the line's height from either edge and from one another."""
    x, width = mark.box[0], mark.box[2]
    columns = ndimage.uniform_filter1d(mark.mask[:, x:x + width].sum(axis=0).astype(float), max(1, round(height / 12)))
    edge = round(NARROWEST * height)
    minima = [c for c in range(edge, width - edge) if columns[c] <= columns[max(c - 1, 0)]
              and columns[c] <= columns[min(c + 1, width - 1)]]
    chosen = []
    for c in sorted(minima, key=lambda c: columns[c]):  # the emptiest first, each clear of the others
        if all(abs(c - other) >= edge for other in chosen):
            chosen.append(c)
    return sorted(chosen[:MOST_CUTS])


def possible_cuts(mark, height):
    """Each way to read `mark`: whole, and cut into 2 to MOST_PARTS digits at cut_columns where it is wider
    than one digit."""
    if mark.box[2] < ONE_DIGIT_WIDTH * height:
        return [[mark]]
    columns = cut_columns(mark, height)
    return [[mark]] + [cut for parts in range(2, MOST_PARTS + 1)
                       for cuts in itertools.combinations(columns, parts - 1) if (cut := cut_at(mark, list(cuts)))]


def width_cost(mark, height):
    """What a reading of `mark` as one digit loses for being wider than a digit: two digits read as one
    look like one squeezed digit to the model, and it can be sure of it."""
    return WIDTH_COST * max(0.0, mark.box[2] / height - WIDE_DIGIT)


def digit_picture(ink, strongest, mark):
    """The Picture of one mark: its crop of the ink map, through digit_image's steps."""
    return di.digit_from_crop(di.soft_crop(ink, strongest, mark.mask))


def seen_picture(image, digits, width=900, zoom=3):
    """What a number's reading saw: the image (at most `width` wide) with each digit's box, and below it
    each digit's 28x28 image `zoom` times its size with the digit read. `digits`: (box, 28x28, digit)."""
    scale = min(1.0, width / image.width)
    shown = image.convert("RGB").resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    cell = di.FIELD * zoom + 8
    picture = Image.new("RGB", (max(shown.width, cell * len(digits)), shown.height + cell + 16), "white")
    picture.paste(shown, (0, 0))
    draw = ImageDraw.Draw(picture)
    for i, ((x, y, w, h), seen, digit) in enumerate(digits):
        draw.rectangle([x * scale, y * scale, (x + w) * scale, (y + h) * scale], outline=(220, 30, 30), width=2)
        draw.text((x * scale + 2, y * scale + 2), str(i + 1), fill=(220, 30, 30))
        picture.paste(Image.fromarray(seen).resize((di.FIELD * zoom,) * 2, Image.NEAREST),
                      (i * cell + 4, shown.height + 4))
        draw.text((i * cell + 4, shown.height + cell), f"{i + 1}: {digit}", fill=(0, 0, 0))
    return picture
