"""Turn a picture of a handwritten digit into a 28x28 image prepared as MNIST's were.

MNIST's digits are white ink on black, size-normalized so the longer side of
the ink is 20 pixels, and placed in a 28x28 field with the ink's centre of
mass at the centre. A photo or a drawing is usually the opposite: dark ink on
light paper, anywhere on a large canvas. `load_digit` undoes that.
"""
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

INK_THRESHOLD = 0.3  # of the strongest ink: fainter pixels are paper texture, not the digit
DIGIT_BOX = 20       # MNIST's size-normalized box, in pixels
FIELD = 28


class NoDigitError(ValueError):
    """The image holds nothing that looks like ink."""


def ink_map(image):
    """Ink strength per pixel, 0 (paper) to 1 (strongest ink), as a float array.

    A transparent image's ink is where it is opaque. Otherwise the paper is the
    colour of the border, light or dark, and ink is whatever differs from it.
    """
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        alpha = np.asarray(image.convert("RGBA"))[..., 3].astype(np.float32)
        if alpha.min() < 250:  # really transparent somewhere: opacity is the ink
            return alpha / 255.0
    gray = np.asarray(image.convert("L")).astype(np.float32) / 255.0
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    paper = np.median(border)
    return np.abs(gray - paper)


def crop_to_ink(ink):
    """The smallest box holding all ink above the threshold, ink rescaled to 0-1."""
    strongest = ink.max()
    if strongest < 0.1:  # no pixel differs from the paper by even a tenth
        raise NoDigitError("no ink found: the image is blank or has no contrast")
    ink = np.clip(ink / strongest, 0, 1)
    ink[ink < INK_THRESHOLD] = 0
    rows, cols = np.nonzero(ink)
    return ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def fit_in_field(ink):
    """Scale the longer side to 20 pixels and centre the mass in a 28x28 field."""
    height, width = ink.shape
    factor = DIGIT_BOX / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    digit = np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).resize(size, Image.LANCZOS),
                       dtype=np.float32)
    mass_y, mass_x = center_of_mass(digit)
    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    top, left = round(FIELD / 2 - mass_y), round(FIELD / 2 - mass_x)
    top = min(max(top, 0), FIELD - digit.shape[0])   # keep the whole digit inside the field
    left = min(max(left, 0), FIELD - digit.shape[1])
    field[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return np.clip(field, 0, 255).astype(np.uint8)


def center_of_mass(image):
    total = image.sum()
    ys, xs = np.indices(image.shape)
    return (ys * image).sum() / total, (xs * image).sum() / total


def load_digit(path):
    """A (28, 28) uint8 array, white digit on black, from an image file of any size.

    Raises OSError when the file cannot be read, ValueError when it is not an
    image, and NoDigitError (a ValueError) when it holds no ink.
    """
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)  # phone photos carry their rotation in EXIF
            image.load()
    except UnidentifiedImageError:
        raise ValueError("not an image PIL can read (PNG, JPEG, BMP, ...)") from None
    return fit_in_field(crop_to_ink(ink_map(image)))
