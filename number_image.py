"""Split a picture of a written number into its digits, left to right, each prepared as digit_image
prepares one digit.

1. find the ink as for one digit (digit_image.ink_map): paper, shadows, ruled lines and light or
   dark ink alike; pieces of ink a few pixels apart are one stroke;
2. drop a page's edges and pieces wholly above or below the line's rows (dirt along the paper's edge,
   in_line); set aside a decimal point or comma, small and low in the paper between two digits
   (without_points), and drop specks (a fleck of dirt);
3. pieces that lie over one another, left to right, are one digit: a 4 or a 5 written in two
   strokes, a 7 with a bar; a piece much shorter than the line (a 5's bar off to the side, a
   stroke broken by a faint stretch) joins its nearer neighbour;
4. each mark's strokes are also found at half its own strongest ink, as one digit's are (with_faint_ink):
   a digit written finer or paler than the rest keeps its faint strokes, or is a mark of its own;
5. a mark may be digits that touch or overlap: `possible_parts` offers every span of it that might be
   one digit, two small networks that vote (the judges, number_judge.py) give each the probability
   that it is one whole digit, and `likeliest_spans` keeps the cuts whose spans are likeliest all to be
   (the model alone is sure of a 0's halves as two 1s; a judge alone may be sure of a 4 with a 1 across
   its edge as one digit, which the model reads as a doubtful 4: SURE_WEIGHT weighs the two). Only
   spans that could be cut out are drawn (on_a_path), and the model reads only those that could lie on
   the likeliest cuts (may_be_likeliest): the cuts are the same (round 30).
6. each digit is read by the model from its own crop, with JUDGES_SHARE of the judges' reading of the
   span it was cut as (their first ten classes are the digits, learned from numbers' spans: round 32).

Each digit's crop then goes through digit_image's own steps (strokes evened, 20-pixel box, centred).
A number small in a large photo (a line under SMALL_LINE pixels of the working copy) is found again in the
photo's own pixels around it (around_the_line, use.number_marks).
"""
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

import digit_image as di

MOST_MARKS = 12       # a number of more marks than this is a page of writing, not a number
SAME_DIGIT = 0.5      # pieces overlapping left to right by this share of the narrower are one digit
SPECK = 0.15          # a piece with less ink than this share of the median mark's is a speck
TALL = 0.5            # of the tallest mark's height: a mark at least this tall is a digit, not a fleck
LINE_MARGIN = 0.25    # of the tallest piece's height: how far above and below the line a digit's piece may lie
PIECE_HEIGHT = 0.6    # of the line's height: a mark shorter than this is part of a digit (a 5's bar)
POINT = 0.4           # of the tallest mark's height: a decimal point (or comma) is no taller or wider,
POINT_THICKNESS = 0.8  # and at least this share of the digits' strokes thick (a pen's dot is its width),
POINT_INK = 0.8        # and its ink at least this share of the strongest: a point is written with the digits' pen
POINT_LOW = 0.75       # and its middle lower than this share of the way down the digits either side
# A line of digits shorter than this many pixels of the working copy (a number small in a large photo) is
# read again from the picture's own pixels around it, ZOOM_MARGIN of its height of paper on each side:
SMALL_LINE = 40
ZOOM_MARGIN = 1.0
# The spans of a mark the judge is asked about, in heights of the mark (a 1 is about a quarter wide, a wide
# 2 or 5 about 1.3; MNIST's 99th percentiles are 0.15 and 1.67):
NARROWEST = 0.15
WIDEST_PART = 1.4
CUT_STEP = 0.15       # spans start and end at multiples of this, and at the columns of least ink (round 13)
NOT_ONE_DIGIT = 10    # the judge's eleventh class: a span that is part of a digit, or more than one
# A span's score: the judge's log-probability that it is one whole digit, plus this share of the digit
# model's log-probability of the digit it reads there (a 4 with a 1 across its edge is one digit to the
# judge, but a doubtful 4 to the model):
SURE_WEIGHT = 2.0
# and that share lies between SURE_WEIGHT * log(1/10) (the model's likeliest of ten digits has at least a
# tenth of the probability; a little less, for rounding) and 0: a span that could not lie on the likeliest
# cuts, whatever the model read there, is not read by it (may_be_likeliest)
LEAST_SURE = SURE_WEIGHT * (np.log(0.1) - 1e-3)
# The judges' first ten classes are the digits, learned from the spans of numbers: a digit of a number is
# read as the model's probabilities with this share of the judges' for the span it was cut as (round 32)
JUDGES_SHARE = 0.3


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
    """The number's marks, left to right: each a digit, or digits that touch; their strongest ink; and the
    decimal points between them (without_points). Raises NoDigitError for no ink and NumberError for
    several lines of writing or more marks than a number has."""
    strongest = di.strongest_ink(ink)
    faint, strokes = di.ink_levels(ink, strongest)
    labels, count = di.stroke_pieces(strokes)
    pieces = [mark_of(labels == i) for i in range(1, count + 1)]
    pieces = [p for p in pieces if not di.page_edge(slices(p.box), ink.shape)]
    if not pieces:
        raise di.NoDigitError(di.NO_INK)
    if (lines := lines_of_writing(pieces)) > 1:  # a page of text: its letters, stacked, would join as digits
        raise NumberError(f"{lines} lines of writing, not one: is this a number?")
    pieces = in_line(pieces)
    pieces.sort(key=lambda p: p.box[0] + p.box[2] / 2)
    marks = [pieces[0]]
    for piece in pieces[1:]:  # a piece over the previous mark is part of its digit
        if overlap(marks[-1].box, piece.box) >= SAME_DIGIT:
            marks[-1] = mark_of(marks[-1].mask | piece.mask)
        else:
            marks.append(piece)
    marks, points = without_points(marks, ink, strongest)
    ink_of = [int(mark.mask.sum()) for mark in marks]
    marks = [mark for mark, amount in zip(marks, ink_of) if amount >= SPECK * np.median(ink_of)]
    marks = with_faint_ink(ink, strongest, faint, joined_pieces(marks))
    if len(marks) > MOST_MARKS:
        raise NumberError(f"more than {MOST_MARKS} marks ({len(marks)}): is this a number?")
    return marks, strongest, points


def without_points(marks, ink, strongest):
    """The marks that are not a decimal point (or comma), and those that are (12.5, 3,75): a mark no taller or
    wider than POINT of the tallest, at least POINT_THICKNESS of the digits' strokes thick and as dark as
    POINT_INK of the strongest ink, in the paper between two digits (marks at least TALL of the tallest),
    alone there, with no digit's ink within a stroke's width of it, and low: its middle below POINT_LOW of
    the way down both. A fleck of a digit's thin or pale stroke is thinner or paler than a pen's point,
    or near the digit. Left among the marks, a ballpoint's point is dropped as a speck, and a marker's
    joins the nearer digit as a piece of it: 12.5 read as 125."""
    tallest = max(mark.box[3] for mark in marks)
    digits = [mark for mark in marks if mark.box[3] >= TALL * tallest]
    digits_ink = thickness = None  # the digits' ink and strokes' width, found only once a mark looks like a point
    kept, points = [], []
    for mark in marks:
        x, y, width, height = mark.box
        before = [digit.box for digit in digits if digit.box[0] + digit.box[2] <= x]
        after = [digit.box for digit in digits if digit.box[0] >= x + width]
        is_point = (max(width, height) <= POINT * tallest and before and after
                    and len(before) + len(after) == len(digits)  # no digit's columns reach over it
                    and all(y + height / 2 > top + POINT_LOW * digit_height
                            for _, top, _, digit_height in (before[-1], after[0]))
                    and alone_between(mark, marks, before[-1], after[0]))
        if is_point:
            if digits_ink is None:
                digits_ink = np.any([digit.mask for digit in digits], axis=0)
                thickness = di.stroke_width(digits_ink)[0]
            near = ndimage.binary_dilation(mark.mask, iterations=max(1, round(thickness)))
            is_point = (min(width, height) >= POINT_THICKNESS * thickness and not (near & digits_ink).any()
                        and ink[mark.mask].max() >= POINT_INK * strongest)
        (points if is_point else kept).append(mark)
    return kept, points


def alone_between(mark, marks, left, right):
    """Whether `mark` is the only mark in the paper between the boxes `left` and `right` (a digit's pieces
    left in a gap are several: a pale 5's bar and body)."""
    return sum(left[0] + left[2] <= other.box[0] + other.box[2] / 2 <= right[0] for other in marks) == 1


def written(digits):
    """A number as text from its (digit, written after a point) pairs: `2026`, or `12.5` where a decimal
    point or comma was written (both are read as a point)."""
    return "".join(("." if after_point else "") + str(digit) for digit, after_point in digits)


def lines_of_writing(pieces):
    """How many lines of writing the pieces at least TALL as the tallest make: bands of rows with paper
    between them that no such piece crosses. A number is one line, however it slopes: each digit's rows
    overlap its neighbour's."""
    tallest = max(piece.box[3] for piece in pieces)
    rows = sorted((piece.box[1], piece.box[1] + piece.box[3]) for piece in pieces if piece.box[3] >= TALL * tallest)
    lines, bottom = 1, rows[0][1]
    for top, end in rows[1:]:
        lines += top >= bottom
        bottom = max(bottom, end)
    return lines


def in_line(pieces):
    """The pieces of ink in the line of digits. The line's rows are those of the pieces at least TALL as the
    tallest, and LINE_MARGIN of the tallest's height above and below them; a piece wholly outside
    them is a fleck (dirt along a paper's edge), however many flecks there are. A piece within them may be
    part of a digit (a 5's bar a little above its body, a faint 1 broken into pieces)."""
    tallest = max(piece.box[3] for piece in pieces)
    tall = [piece for piece in pieces if piece.box[3] >= TALL * tallest]
    top = min(piece.box[1] for piece in tall) - LINE_MARGIN * tallest
    bottom = max(piece.box[1] + piece.box[3] for piece in tall) + LINE_MARGIN * tallest
    return [piece for piece in pieces if piece.box[1] < bottom and piece.box[1] + piece.box[3] > top]


def with_faint_ink(ink, strongest, faint, marks):
    """The marks with each digit's strokes found at half its own strongest ink, as one digit's are, not the
    number's: a digit written thinner than the rest keeps its faint strokes (a 7's bar, a 9's loop), and
    one that is wholly faint becomes a mark of its own.

    `faint` is the ink down to LINE_LEVEL of the number's strongest, printed lines aside (di.ink_levels).
    A piece of it that holds one mark is that mark's, however near another lies (a 7's bar reaching
    toward the digit before it); in a piece of several marks (digits whose soft edges meet) each pixel
    is the nearest mark's, so no two marks join through the soft edges between them.
    """
    smooth = ndimage.uniform_filter(ink, size=3)  # a mark's strongest ink, as di.strongest_ink finds it
    owner = np.zeros(ink.shape, dtype=np.int32)  # 1 + the mark's index where a mark is
    for i, mark in enumerate(marks):
        owner[mark.mask] = i + 1
    pieces, count = ndimage.label(faint | (owner > 0), structure=np.ones((3, 3)))
    taker = faint_ink_taker(owner, pieces, count, len(marks))
    left_out = faint & (ink <= di.INK_LEVEL * strongest)  # not specks or a page's edge: those are stronger
    tallest = max(mark.box[3] for mark in marks)
    grown = []
    for i, mark in enumerate(marks):
        if mark.box[3] < TALL * tallest:  # a fleck, not a digit: grown along a shadow's faint line, it spans a photo
            grown.append(mark)
            continue
        own_level = di.INK_LEVEL * smooth[mark.mask].max()
        reach = left_out & (taker == i + 1)
        grown.append(mark_of(mark.mask | (reach & (ink > own_level))))
    for mark in faint_marks(ink, smooth, pieces, owner, line_height(marks)):
        side = [i for i, other in enumerate(grown) if overlap(other.box, mark.box) >= SAME_DIGIT]
        if side:  # over a mark: part of its digit
            grown[side[0]] = mark_of(grown[side[0]].mask | mark.mask)
        else:
            grown.append(mark)
    return sorted(grown, key=lambda mark: mark.box[0] + mark.box[2] / 2)


def faint_ink_taker(owner, pieces, count, marks):
    """For each pixel, the mark (1 + its index) its faint ink may join, 0 for none: the one mark of its piece
    of faint ink, where the piece holds one; else the nearest mark, where the piece holds it."""
    holds = np.zeros((count + 1, marks + 1), dtype=bool)  # [piece, 1 + mark]: the piece holds the mark
    holds[pieces[owner > 0], owner[owner > 0]] = True
    sole_mark = np.where(holds.sum(axis=1) == 1, holds.argmax(axis=1), 0)[pieces]
    nearest = owner[tuple(ndimage.distance_transform_edt(owner == 0, return_indices=True)[1])]
    taker = np.where(sole_mark > 0, sole_mark, nearest)
    return np.where(holds[pieces, taker], taker, 0)


def faint_marks(ink, smooth, pieces, owner, height):
    """Digits wholly fainter than half the number's strongest ink: the pieces of faint ink that reach no
    mark, at least PIECE_HEIGHT of the line's `height` tall and centred within the line's rows, each at
    half its own strongest ink."""
    reached = set(np.unique(pieces[owner > 0]).tolist())
    rows = np.flatnonzero((owner > 0).any(axis=1))
    found = []
    for label, box in enumerate(ndimage.find_objects(pieces), start=1):
        if box is None or label in reached or box[0].stop - box[0].start < PIECE_HEIGHT * height:
            continue
        if not rows[0] <= (box[0].start + box[0].stop) / 2 <= rows[-1] or di.page_edge(box, ink.shape):
            continue
        piece = pieces == label
        found.append(mark_of(piece & (ink > di.INK_LEVEL * smooth[piece].max())))
    return found


def marks_of(image, ink=None):
    """A picture's ink map (of its working copy, digit_image.ink_map), the number's marks in it, their
    strongest ink, the picture's file's pixels per pixel of the working copy (a mark's box times this
    is in the file's own pixels, however finely open_picture decoded it), and the decimal points between
    its digits (marks too)."""
    work = di.working_copy(image)
    ink_map = di.ink_map(work, ink)
    marks, strongest, points = number_marks(ink_map)
    return ink_map, marks, strongest, image.width / work.width * image.info.get(di.FILE_PIXELS, 1), points


def around_the_line(marks, scale, size):
    """The box (left, top, right, bottom) of the marks, with ZOOM_MARGIN line heights of paper on each side,
    in the pixels of a picture of this size whose pixels per pixel of the working copy are `scale`."""
    margin = ZOOM_MARGIN * line_height(marks)
    left = min(mark.box[0] for mark in marks) - margin
    top = min(mark.box[1] for mark in marks) - margin
    right = max(mark.box[0] + mark.box[2] for mark in marks) + margin
    bottom = max(mark.box[1] + mark.box[3] for mark in marks) + margin
    return (max(0, round(left * scale)), max(0, round(top * scale)),
            min(size[0], round(right * scale)), min(size[1], round(bottom * scale)))


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


class Parts(NamedTuple):
    """The ways a mark may be cut: each span (a, b) of columns of its strokes as the judge sees it."""
    spans: list       # (first column, column after the last) on the fine grid
    pictures: np.ndarray  # (n, 28, 28) uint8: each span's strokes fitted in MNIST's field
    width: int        # the mark's width on the fine grid
    scale: float      # fine-grid columns per column of the working copy


def possible_parts(ink, strongest, mark, shortest=PIECE_HEIGHT, every_span=False):
    """Every span of `mark` that might be one digit, each with the picture the judge reads.

    The mark's strokes are evened once, on a grid where its height is a digit's box; a span starts and
    ends at a multiple of CUT_STEP of that height or at a column of least ink (where digits that touch
    meet), and is NARROWEST to WIDEST_PART heights wide; its ink is at least `shortest` as tall as the
    ink within half a height either side (a 1's long flag alone is part of a digit, as a piece under
    PIECE_HEIGHT is between marks). The whole mark is always a span. Only spans on some path of spans
    across the mark are kept, as no other can be cut out (on_a_path), unless `every_span` (the judge's
    lessons, number_judge.py).
    """
    crop = di.soft_crop(ink, strongest, mark.mask, faint=True)
    strokes = di.even_strokes(di.stroke_mask(crop, side=crop.shape[0]))
    unit, width = di.DIGIT_BOX * di.STROKE_GRID, strokes.shape[1]
    columns = ndimage.uniform_filter1d(strokes.sum(axis=0).astype(float), di.STROKE_GRID)
    least_ink = [c for c in range(1, width - 1) if columns[c] <= columns[c - 1] and columns[c] <= columns[c + 1]]
    edge = NARROWEST * unit / 2
    bounds = sorted({0, width} | {c for c in [*range(0, width, round(CUT_STEP * unit)), *least_ink]
                                  if edge <= c <= width - edge})

    def tall_enough(a, b):
        return ink_height(strokes[:, a:b]) >= shortest * ink_height(strokes[:, max(a - unit // 2, 0):b + unit // 2])

    spans = [(a, b) for i, a in enumerate(bounds) for b in bounds[i + 1:] if strokes[:, a:b].any() and
             ((a, b) == (0, width) or NARROWEST * unit <= b - a <= WIDEST_PART * unit and tall_enough(a, b))]
    if not every_span:
        spans = on_a_path(spans, width)
    pictures = [di.fit_in_field(strokes[:, a:b]) for a, b in spans]
    return Parts(spans, np.stack(pictures), width, width / mark.box[2])


def ink_height(strokes):
    """How many rows lie between the top and the bottom of these strokes' ink."""
    rows = np.flatnonzero(strokes.any(axis=1))
    return rows[-1] - rows[0] + 1


def best_sums(spans, scores, width):
    """The highest sum of scores along a path of spans (a, b) from column 0 to each column it reaches
    (ahead), and from each column a path leaves for column `width` to there (behind)."""
    ahead, behind = {0: 0.0}, {width: 0.0}
    for (a, b), score in sorted(zip(spans, scores), key=lambda item: item[0][1]):
        if a in ahead:
            ahead[b] = max(ahead.get(b, -np.inf), ahead[a] + score)
    for (a, b), score in sorted(zip(spans, scores), key=lambda item: -item[0][0]):
        if b in behind:
            behind[a] = max(behind.get(a, -np.inf), behind[b] + score)
    return ahead, behind


def on_a_path(spans, width):
    """The spans that lie on some path of spans from column 0 to column `width`: a mark is cut only into
    spans that cover it, so no other span is worth drawing for the judge (most of an enlarged number's
    spans, round 30)."""
    ahead, behind = best_sums(spans, [0.0] * len(spans), width)
    return [(a, b) for a, b in spans if a in ahead and b in behind]


def may_be_likeliest(parts, highest, lowest):
    """Which of parts.spans may lie on the likeliest path (likeliest_spans) when each span's score is known
    only to lie between `lowest` and `highest`: those on a path whose highest scores sum to at least what
    the best path's lowest scores sum to."""
    ahead, behind = best_sums(parts.spans, highest, parts.width)
    surely = best_sums(parts.spans, lowest, parts.width)[0][parts.width]
    return [ahead.get(a, -np.inf) + high + behind.get(b, -np.inf) >= surely - 1e-6
            for (a, b), high in zip(parts.spans, highest)]


def columns_between(parts, spans):
    """The columns (of the working copy, from the mark's left edge) where these spans of parts, left to
    right, meet."""
    return [round(a / parts.scale) for a, _ in spans[1:]]


def likeliest_spans(parts, scores):
    """The spans, left to right, most likely each one digit: the path through parts.spans with the highest
    sum of their scores (SURE_WEIGHT). A mark no path covers is one span, whole."""
    best = {0: (0.0, None)}  # span end -> (score of the best path there, where its last span starts)
    for (a, b), score in sorted(zip(parts.spans, scores), key=lambda item: item[0][1]):
        if a in best and (b not in best or best[a][0] + score > best[b][0]):
            best[b] = (best[a][0] + score, a)
    if parts.width not in best:
        return [(0, parts.width)]
    spans, end = [], parts.width
    while end:
        spans.append((best[end][1], end))
        end = best[end][1]
    return spans[::-1]


def digit_picture(ink, strongest, mark):
    """The Picture of one mark: its crop of the ink map, through digit_image's steps."""
    return di.digit_from_crop(di.soft_crop(ink, strongest, mark.mask, faint=True))


def seen_picture(image, digits, width=900, zoom=3):
    """What a number's reading saw: the image (at most `width` wide) with each digit's box, and below it
    each digit's 28x28 image `zoom` times its size with the digit read. `digits`: (box, 28x28, digit), each
    box in the file's pixels (di.FILE_PIXELS: the image may be a JPEG decoded at a fraction of its size)."""
    shown_scale = min(1.0, width / image.width)
    shown = di.in_plain_mode(image).convert("RGB").resize((max(1, round(image.width * shown_scale)),
                                                           max(1, round(image.height * shown_scale))))
    scale = shown_scale / image.info.get(di.FILE_PIXELS, 1)  # shown pixels per file pixel
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
