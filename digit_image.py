"""Turn a picture of a handwritten digit into a 28x28 image prepared as MNIST's were.

MNIST's digits are white ink on black, size-normalized so the longer side of
the ink is 20 pixels, and placed in a 28x28 field with the ink's centre of
mass at the centre. A photo or a drawing is usually the opposite: dark ink on
light paper, anywhere on a large canvas, and a phone photo adds uneven light,
ruled or squared lines and coloured ink. `load_digit` undoes all that the way
document scanners do:

1. find the ink: which of ink and paper is the lighter is read off the paper
   around the digit, the image's border (or given: the draw page's canvas is
   dark ink on white); the paper is estimated locally (a morphological
   closing, which removes strokes thinner than its window and keeps the slow
   changes of light), and ink is what is darker than its own paper,
   relatively, in the colour channel where it stands out most;
2. keep the digit: long thin runs across are ruled lines and go, and upright
   ones too where lines across are there (squared paper); of the remaining
   strokes, the largest connected one and the pieces near it stay (a stroke
   that runs off the frame too), specks and page edges go;
3. even the strokes: whatever the pen, a stroke is redrawn within MNIST's usual widths (a thin
   ballpoint widened, a fat marker redrawn along its centreline), full brightness at its core,
   soft-edged as MNIST's scans were;
4. crop to the digit, scale its longer side to 20 pixels, centre its mass;
5. note what makes the picture unlike one digit (other marks beside it, too wide, more loops than a
   digit has, too much or too little ink, strokes too long), so that the reader can say it is unsure.
"""
import functools
import io
import math
import os
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

WORK_SIDE = 480         # photos are shrunk to this longer side first: ample for a digit (a ballpoint stays
                        # whole), and 3x as fast as 1000 (benchmarks/pens.py times a read)
PAPER_WINDOW = 1 / 6    # of the longer side: wider than any stroke, narrower than a shadow's slope
INK_LEVEL = 0.5         # of the strongest ink: what counts as a stroke when finding the digit
LINE_LEVEL = 0.25       # of the strongest ink: faint enough that printed lines stay unbroken
LINE_LENGTH = 0.6       # of the image's width (height): two or more runs this long are ruled (squared) lines...
LINE_WIDTH = 1 / 150    # of the longer side: ...if it is also thinner than this (pen strokes are wider)
STROKE_GAP = 1 / 200    # of the longer side: pieces of ink this close are one stroke
PIECE_SHARE = 0.1       # a piece smaller than this share of the largest stroke is a speck
EDGE_SOFTNESS = 2       # pixels of anti-aliased ink kept around each kept stroke
BORDER = 1 / 20         # of each side: the frame of the image whose pixels are taken for paper
PAPER_AT_END = 0.25     # paper this near an end of the image's brightness range settles which is ink
PAGE_EDGE = 0.8         # a piece along the frame spanning this share of a side is a page's edge, not a stroke
FILE_PIXELS = "file pixels per pixel"  # open_picture's note in an image's info: a JPEG decoded at a fraction of its size
MAX_PIXELS = 50_000_000  # a 14000x14000 image is refused: far beyond any photo, and 600 MB to decode
DIGIT_BOX = 20          # MNIST's size-normalized box, in pixels
STROKE_GRID = 4         # strokes are measured and redrawn on a grid this much finer than the box
# Pixels of the box: about MNIST's training digits' 10th and 90th percentiles of width, as first measured
# (1.75, 3.47); benchmarks/stroke_widths.py, over every 20th digit, gives 1.75 and 3.25 (widths come in steps).
STROKE_WIDTHS = (1.75, 3.5)
TYPICAL_WIDTH = 2.75    # pixels of the box: where a stroke outside that range is brought
# What one digit looks like, from MNIST's training digits read through this module (at most about 1 in
# 200 of them lies beyond each bound: benchmarks/results/stroke_widths.md); a picture beyond one is noted
# as unlike a digit.
MOST_STRAY_INK = 0.2    # substantial marks beside the digit, as a share of its ink (a word's other letters)
# Width over height of the ink (a word, a line of marks). At 1.5 it flagged 0.5% of validation digits,
# wide 5s and 2s; 1.9 leaves that room to use.LEAST_EVIDENCE, which flags more non-digits with it
# (benchmarks/results/unsure_bound.md).
WIDEST = 1.9
MOST_LOOPS = 2          # an 8 has two (a grid, a star, a word have more)
INK_SHARE = (0.025, 0.27)  # of the 28x28 field: a lone speck, or a blotch of noise
LONGEST = 2.4           # the strokes' total length, in heights of the box (a spiral, a scribble)
FIELD = 28


class NoDigitError(ValueError):
    """The image holds nothing that looks like ink."""


NO_INK = "no ink found: the image is blank or has no contrast"
OTHER_MARKS, TOO_WIDE = "other marks beside it", "wider than a digit"  # two doubts of the layout: perhaps a number


class Picture(NamedTuple):
    digit: np.ndarray  # (28, 28) uint8, white on black, as the model sees it
    doubt: str         # why the picture is unlike one digit, or "" when nothing is


def in_plain_mode(image):
    """The image in a mode of a byte a channel (L, LA, RGB or RGBA), which resizing and converting handle."""
    if image.mode == "1":  # two-tone: a byte a pixel is enough, where RGB would take four
        return image.convert("L")
    if image.mode.startswith("I"):  # 16-bit gray (a scanner's PNG): Pillow's convert would clip it to white
        pixels = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or pixels.max() > 255:
            pixels = pixels / 257
        return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    if image.mode not in ("RGB", "RGBA", "L", "LA"):  # palette, CMYK
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    return image


def working_copy(image):
    """The image in a plain mode, shrunk (never enlarged) so its longer side is at most WORK_SIDE."""
    image = in_plain_mode(image)
    factor = WORK_SIDE / max(image.size)
    if factor >= 1:
        return image
    size = (max(1, round(image.size[0] * factor)), max(1, round(image.size[1] * factor)))
    return image.resize(size, Image.BOX)


def local_paper(channel, window):
    """The paper's brightness around each pixel: a closing removes the dark strokes, a blur smooths it.

    The blur of a curved shadow edge is brighter than the paper on its dark side; capping it at the
    closing, which never lies above the paper, keeps that band from looking like ink.
    """
    closed = ndimage.minimum_filter(ndimage.maximum_filter(channel, size=window), size=window)
    return np.minimum(ndimage.uniform_filter(closed, size=window), closed)


def light_ink(gray, window):
    """Whether the ink is lighter than the paper (chalk, MNIST itself) rather than darker.

    The paper is what the image's border mostly is. Where it lies near one end of the image's range
    of brightness (a drawing, a scan, MNIST itself), the ink is at the other end; this is decided
    first, because strokes can hold small holes of paper that stand out from them more than the
    strokes do. Where a shadow spreads the paper over the range, ink is what departs most from its
    surroundings: the strongest departures from the local mean are bright for light ink and dark
    for dark ink, however a shadow dims the paper.
    """
    height, width = gray.shape
    edge = max(1, round(min(height, width) * BORDER))
    frame = np.concatenate([gray[:edge].ravel(), gray[-edge:].ravel(), gray[:, :edge].ravel(),
                            gray[:, -edge:].ravel()])
    smooth = ndimage.uniform_filter(gray, size=3)  # 3x3: not noise
    darkest, lightest = smooth.min(), smooth.max()
    paper = (np.median(frame) - darkest) / max(lightest - darkest, 1e-6)  # 0: at the dark end, 1: the light
    if paper > 1 - PAPER_AT_END or paper < PAPER_AT_END:
        return paper < PAPER_AT_END
    detail = smooth - ndimage.uniform_filter(gray, size=window)
    return detail.max() > -detail.min()


def ink_map(image, ink=None):
    """Ink strength per pixel, 0 (paper) to 1, as a float array.

    A transparent image's ink is where it is opaque. Otherwise the image is
    turned into dark ink on light paper (inverted if the ink is the light part:
    `ink` "light" or "dark" when it is known, else read off the border), and
    ink is how much darker a pixel is than its local paper, relatively, in
    its darkest channel: a shadow dims paper and ink alike, and blue or red
    ink is dark in the channels of the other colours.
    """
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        alpha = np.asarray(image.convert("RGBA"))[..., 3].astype(np.float32)
        if alpha.min() < 250:  # really transparent somewhere: opacity is the ink
            return alpha / 255.0
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    gray = sum(np.moveaxis(rgb, 2, 0)) / 3
    window = max(7, round(max(gray.shape) * PAPER_WINDOW) | 1)
    if ink == "light" or (ink is None and light_ink(gray, window)):
        rgb = 1.0 - rgb
    if image.mode in ("L", "LA") or (np.array_equal(rgb[..., 0], rgb[..., 1])
                                     and np.array_equal(rgb[..., 1], rgb[..., 2])):
        rgb = rgb[..., :1]  # grey, as a drawing is: one channel's work, not three
    paper = np.stack([local_paper(rgb[..., c], window) for c in range(rgb.shape[2])], axis=-1)
    darkness = (paper - rgb) / np.maximum(paper, 0.05)
    # The channels' maximum, one channel at a time: numpy's max over a short last axis is 30x slower.
    return np.clip(functools.reduce(np.maximum, np.moveaxis(darkness, 2, 0)), 0, 1)


def runs_longer_than(mask, length, width, axis):
    """Pixels of `mask` in straight runs along `axis` at least `length` long and `width` wide."""
    size = (length, width) if axis == 0 else (width, length)
    as_bytes = mask.astype(np.uint8)
    return ndimage.maximum_filter(ndimage.minimum_filter(as_bytes, size=size), size=size).astype(bool)


def printed_lines(faint_ink):
    """Long thin horizontal and vertical runs: the lines of ruled or squared paper. Upright runs are lines only
    beside lines across (squared paper): paper ruled up and down alone is rare, and two tall thin upright
    runs on their own are likelier the 1s of a number written with a fine pen (a ballpoint 2011 read `20`)."""
    height, width = faint_ink.shape
    # At least 2: in a small image (a 28x28 digit, a thumbnail) a 2-pixel run is a pen stroke.
    thick = max(2, round(max(height, width) * LINE_WIDTH))
    lines = np.zeros_like(faint_ink)
    for axis, extent in ((1, width), (0, height)):  # across, then upright
        if axis == 0 and not lines.any():
            break
        length = max(3, round(extent * LINE_LENGTH))
        runs = runs_longer_than(faint_ink, length, 1, axis) & ~runs_longer_than(faint_ink, length, thick, axis)
        # Printed lines come in families; one long thin run alone is a stroke (a 1, a 7's bar) of a fine pen.
        if ndimage.label(runs, structure=np.ones((3, 3)))[1] >= 2:
            lines |= runs
    return lines


def strongest_ink(ink):
    """The ink map's strongest ink (a single hot pixel is noise, not ink); NoDigitError for none."""
    strongest = ndimage.uniform_filter(ink, size=3).max()
    if strongest < 0.1:  # nothing differs from the paper by even a tenth
        raise NoDigitError(NO_INK)
    return strongest


def ink_levels(ink, strongest):
    """An ink map's faint ink (LINE_LEVEL of the strongest and up) and its strokes (INK_LEVEL and up), the
    lines of ruled or squared paper taken out of both."""
    faint = ink > LINE_LEVEL * strongest
    faint &= ~printed_lines(faint)
    return faint, faint & (ink > INK_LEVEL * strongest)


def stroke_pieces(strokes):
    """The pieces of a mask of strokes, labelled 1 to count."""
    # Pieces a few pixels apart belong together: a line crossing a stroke, or a thin stretch of a
    # fine pen, leaves such gaps. Grouping is decided on the bridged mask; only strokes are kept.
    gap = max(1, round(max(strokes.shape) * STROKE_GAP))
    labels, count = ndimage.label(ndimage.binary_dilation(strokes, iterations=gap), structure=np.ones((3, 3)))
    labels[~strokes] = 0
    if count == 0:
        raise NoDigitError(NO_INK)
    return labels, count


def touches_frame(box, shape):
    """Whether a piece's box (row and column slices) reaches an edge of an image of this shape."""
    return box[0].start == 0 or box[1].start == 0 or box[0].stop == shape[0] or box[1].stop == shape[1]


def page_edge(box, shape):
    """Along the frame and most of a side long: the edge of a page or a table, not a stroke."""
    return touches_frame(box, shape) and (box[0].stop - box[0].start >= PAGE_EDGE * shape[0]
                                          or box[1].stop - box[1].start >= PAGE_EDGE * shape[1])


def digit_strokes(ink, strongest):
    """A mask of the digit's strokes: lines removed, the main stroke and the pieces near it kept."""
    _, strokes = ink_levels(ink, strongest)
    labels, count = stroke_pieces(strokes)
    sizes = ndimage.sum(strokes, labels, index=range(1, count + 1))
    boxes = ndimage.find_objects(labels)

    # The digit is the largest piece clear of the frame, unless only frame-touching ink is substantial
    # (a drawing that fills its canvas).
    inside = [i for i in range(count) if not touches_frame(boxes[i], ink.shape)]
    main = max(inside or range(count), key=lambda i: sizes[i])
    if inside and sizes[main] < 0.2 * sizes.max():
        main = int(np.argmax(sizes))
    main_box = boxes[main]
    reach = max(main_box[0].stop - main_box[0].start, main_box[1].stop - main_box[1].start)

    def near_main(box):
        gap_y = max(main_box[0].start - box[0].stop, box[0].start - main_box[0].stop, 0)
        gap_x = max(main_box[1].start - box[1].stop, box[1].start - main_box[1].stop, 0)
        return max(gap_y, gap_x) < 0.5 * reach

    # A stroke that runs off the frame (a 7's bar drawn past the edge) belongs to the digit when it is
    # near it; a page's edge does not.
    keep = [i for i in range(count) if i == main or (sizes[i] >= PIECE_SHARE * sizes[main] and near_main(boxes[i])
                                                       and not page_edge(boxes[i], ink.shape))]
    # Substantial ink left out (not specks, not a page's edge): other letters of a word, other digits.
    stray = sum(sizes[i] for i in range(count) if i not in keep and sizes[i] >= PIECE_SHARE * sizes[main]
                and not page_edge(boxes[i], ink.shape))
    return np.isin(labels, np.array(keep) + 1), stray / sum(sizes[i] for i in keep)


def soft_crop(ink, strongest, strokes, faint=False):
    """The box of `strokes` in the ink map: the ink near them (soft edges kept) rescaled to 0-1, all else 0.
    With `faint`, also the fainter ink joined to them (a quarter of the strongest, LINE_LEVEL, and up): a
    thin stretch of a stroke, which leaves the digit broken without it (a number's digits, drawn small and
    anti-aliased, have such stretches)."""
    rows, cols = np.nonzero(strokes)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    ink, strokes = ink[box], strokes[box]
    near_strokes = ndimage.binary_dilation(strokes, iterations=EDGE_SOFTNESS)
    if faint:
        pieces, _ = ndimage.label((ink > LINE_LEVEL * strongest) | strokes, structure=np.ones((3, 3)))
        near_strokes |= np.isin(pieces, np.unique(pieces[strokes]))
    digit = np.where(near_strokes, np.clip(ink / strongest, 0, 1), 0)
    digit[digit < LINE_LEVEL] = 0
    return digit


def crop_to_digit(ink):
    """The digit's box of the ink map, its ink rescaled to 0-1 and everything else set to 0; and the
    substantial ink left out beside it, as a share of the digit's."""
    strongest = strongest_ink(ink)
    strokes, stray = digit_strokes(ink, strongest)
    return soft_crop(ink, strongest, strokes), stray


def resized(image, size):
    """A float image resized to (width, height): averaged over each new pixel when shrinking (so a stroke
    thinner than a pixel still leaves its share of ink), smoothly interpolated when enlarging."""
    shrinking = size[0] < image.shape[1] or size[1] < image.shape[0]
    return np.asarray(Image.fromarray(image.astype(np.float32), mode="F")
                      .resize(size, Image.BOX if shrinking else Image.BILINEAR), dtype=np.float32)


def stroke_mask(digit, side=None):
    """The digit's strokes as a mask on a grid STROKE_GRID times finer than MNIST's 20-pixel box: its longer
    side (or `side` pixels of it: a number's line height) brought to the box's.

    A thin pen's stroke, shrunk, is faint: a stroke is where the ink is at least half as strong as
    along the strokes' cores (the 90th percentile of the ink present), so a faint line stays whole.
    """
    height, width = digit.shape
    factor = DIGIT_BOX * STROKE_GRID / (side or max(height, width))
    fine = resized(digit, (max(1, round(width * factor)), max(1, round(height * factor))))
    present = fine[fine > 0.02]
    if not present.size:  # too faint to leave anything at this scale
        return np.zeros(fine.shape, dtype=bool)
    return fine > 0.5 * np.percentile(present, 90)


def stroke_width(mask):
    """The typical width of a mask's strokes in pixels, and their centrelines (the ridge of the distance
    to the paper: each pixel at least as far from the paper as its 8 neighbours)."""
    inside = ndimage.distance_transform_edt(mask)
    ridge = mask & (inside >= ndimage.maximum_filter(inside, size=3))
    # A stroke w pixels wide is (w + 1) / 2 from the paper at its centre.
    return 2 * float(np.median(inside[ridge])) - 1 if ridge.any() else 0.0, ridge


def even_strokes(mask):
    """Strokes brought to MNIST's widths: thin ones widened, fat ones pared from their edges (redrawing them
    along the centreline instead leaves spurs at a loop's corners), both to the typical width; strokes
    already within the usual range are left as they are."""
    width, ridge = stroke_width(mask)
    low, high = STROKE_WIDTHS[0] * STROKE_GRID, STROKE_WIDTHS[1] * STROKE_GRID
    typical = TYPICAL_WIDTH * STROKE_GRID
    if width < low:  # a fine pen: widen each stroke by the difference
        return ndimage.distance_transform_edt(~mask) <= (typical - width) / 2
    if width > high:  # a marker: each stroke pared from both edges down to the typical width
        return ndimage.distance_transform_edt(mask) > (width - typical) / 2
    return mask


def fit_in_field(strokes):
    """A fine stroke mask averaged down to MNIST's box (its longer side 20 pixels, soft-edged as MNIST's
    binary scans were), its mass centred in a 28x28 field."""
    rows, cols = np.nonzero(strokes)
    strokes = strokes[rows.min():rows.max() + 1, cols.min():cols.max() + 1]  # a thinned marker's box shrinks
    height, width = strokes.shape
    factor = DIGIT_BOX / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    digit = resized(strokes.astype(np.float32), size) * 255
    mass_y, mass_x = center_of_mass(digit)
    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    top, left = round(FIELD / 2 - mass_y), round(FIELD / 2 - mass_x)
    top = min(max(top, 0), FIELD - digit.shape[0])   # keep the whole digit inside the field
    left = min(max(left, 0), FIELD - digit.shape[1])
    field[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return np.clip(np.round(field), 0, 255).astype(np.uint8)


def loop_count(strokes):
    """How many closed loops the strokes make: holes of paper enclosed by ink, specks aside."""
    paper, count = ndimage.label(~strokes)
    outside = np.unique(np.concatenate([paper[0], paper[-1], paper[:, 0], paper[:, -1]]))
    areas = np.bincount(paper.ravel(), minlength=count + 1)
    return sum(1 for label in range(1, count + 1) if label not in outside and areas[label] >= 0.004 * strokes.size)


def marks_inside_loops(strokes):
    """Whether a separate piece of ink lies inside another's loop (a smiley's eyes, a circled mark):
    no digit has one."""
    pieces, count = ndimage.label(strokes, structure=np.ones((3, 3)))
    for piece in range(1, count + 1 if count > 1 else 1):  # one piece cannot lie inside another
        others = strokes & (pieces != piece)
        enclosed = ndimage.binary_fill_holes(others) & ~others
        if enclosed[pieces == piece].mean() > 0.9:
            return True
    return False


def layout_doubt(width_over_height, stray, drawn, strokes, digit):
    """Why the picture is unlike one MNIST digit, or "" (the bounds are above the functions). `drawn` is
    the strokes as drawn, `strokes` as evened: widening a fine pen's strokes can close small loops."""
    ink_share = digit.mean() / 255
    if stray >= MOST_STRAY_INK:
        return OTHER_MARKS
    if width_over_height >= WIDEST:
        return TOO_WIDE
    if max(loop_count(drawn), loop_count(strokes)) > MOST_LOOPS:
        return "more loops than a digit has"
    if marks_inside_loops(strokes):
        return "marks inside a loop"
    if not INK_SHARE[0] <= ink_share < INK_SHARE[1]:
        return "too much ink for a digit" if ink_share >= INK_SHARE[1] else "too little ink for a digit"
    if stroke_width(strokes)[1].sum() / max(strokes.shape) >= LONGEST:  # the centrelines' length
        return "longer strokes than a digit's"
    return ""


def center_of_mass(image):
    total = image.sum()
    ys, xs = np.indices(image.shape)
    return (ys * image).sum() / total, (xs * image).sum() / total


def png_bytes(digit):
    """A 28x28 uint8 digit as PNG file bytes (white on black, as the model sees it)."""
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, "PNG")
    return buffer.getvalue()


def load_digit(path, ink=None):
    """A (28, 28) uint8 array, white digit on black, from an image file (or file object) of any size."""
    return read_picture(path, ink).digit


def open_picture(path, max_pixels=MAX_PIXELS, side=WORK_SIDE):
    """An image file (or file object) of any size, decoded, upright, and refused before its pixels are
    decoded when it is too large: `max_pixels` bounds the pixels decoded (a JPEG is decoded at a fraction
    of its size, no finer than `side` on its longer side, and that is what counts; side=None decodes it
    whole). The image's info[FILE_PIXELS] is how many of the file's pixels each decoded pixel spans.
    Raises OSError when the file cannot be read and ValueError when it is not an image, is damaged or cut
    short, or is too large."""
    if isinstance(path, (str, os.PathLike)) and os.path.exists(path) and not os.path.isfile(path):
        raise ValueError("not a regular file (a folder, a pipe or a device)")  # a pipe would hang the read
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:  # refused before its pixels are decoded
                raise ValueError(f"the image is {image.width}x{image.height} pixels; the limit is "
                                 f"{MAX_PIXELS // 1_000_000} million")
            stored_width = image.width
            if side and image.format == "JPEG" and max(image.size) > side:  # decode no finer than the work needs
                factor = side / max(image.size)
                image.draft(image.mode, (round(image.width * factor), round(image.height * factor)))
            image.info[FILE_PIXELS] = stored_width / image.width
            if image.width * image.height > max_pixels:
                raise ValueError(f"the image is {image.width}x{image.height} pixels to decode; the limit "
                                 f"here is {max_pixels / 1_000_000:g} million")
            ImageOps.exif_transpose(image, in_place=True)  # phone photos carry their rotation in EXIF
            image.load()
            return image
    except Image.DecompressionBombError:  # Pillow's own guard, at twice its 89-megapixel warning
        raise ValueError(f"the image is too large: over {MAX_PIXELS // 1_000_000} million pixels") from None
    except UnidentifiedImageError:
        raise ValueError("not an image file that can be read (PNG, JPEG, BMP, ...)") from None
    except SyntaxError as error:  # what Pillow raises for some broken files
        raise ValueError(f"a broken image file ({error})") from None
    except OSError as error:
        if error.errno is not None:  # the file itself could not be read: missing, a folder, no permission
            raise
        # Pillow's own, for a file that ends early or breaks off ("Truncated File Read")
        raise ValueError(f"a damaged or cut-short image file ({error})") from None


def decoded_finer(path, picture, max_pixels=MAX_PIXELS):
    """The JPEG `picture` was decoded from (open_picture, at a fraction of its size) decoded again, whole or
    as finely as `max_pixels` allows."""
    file_pixels = picture.info[FILE_PIXELS]
    width, height = picture.width * file_pixels, picture.height * file_pixels
    side = None
    if width * height > max_pixels:  # it decodes at 1/2, 1/4 or 1/8: asking half the side that fits stays within
        side = int(max(width, height) * math.sqrt(max_pixels / (width * height)) / 2)
    if hasattr(path, "seek"):  # a file object, read once already
        path.seek(0)
    return open_picture(path, max_pixels, side)


def digit_from_crop(crop, stray=0.0):
    """The Picture of one digit's crop of the ink map: strokes evened, fitted in the field, doubts noted."""
    drawn = stroke_mask(crop)
    if not drawn.any():  # ink too faint to leave a stroke once brought to the box's scale
        raise NoDigitError(NO_INK)
    strokes = even_strokes(drawn)
    digit = fit_in_field(strokes)
    return Picture(digit, layout_doubt(crop.shape[1] / crop.shape[0], stray, drawn, strokes, digit))


def read_picture(path, ink=None, max_pixels=MAX_PIXELS):
    """The Picture of an image file (or file object) of any size: the 28x28 digit and any doubt.

    `ink` is "dark" or "light" when it is known (the draw page's canvas is dark on white); by
    default it is read off the image. Raises what open_picture raises, and NoDigitError (a ValueError)
    when the image holds no ink.
    """
    return digit_from_crop(*crop_to_digit(ink_map(working_copy(open_picture(path, max_pixels)), ink)))
