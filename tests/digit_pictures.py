"""Pictures of real MNIST test digits drawn the way people's photos and drawings look."""
import numpy as np
from PIL import Image


def upscale(digit, scale):
    """A 28x28 uint8 digit as a smooth (28*scale)^2 ink map, 0-1."""
    size = 28 * scale
    return np.asarray(Image.fromarray(digit).resize((size, size), Image.BICUBIC), dtype=np.float32) / 255


def on_paper(digit, rng, canvas=(1000, 750), scale=8, ink_rgb=(0.1, 0.1, 0.15)):
    """Dark ink on uneven off-white paper, somewhere off-centre on a large RGB canvas."""
    ink = np.clip(upscale(digit, scale), 0, 1)[..., None]
    width, height = canvas
    ys, xs = np.mgrid[0:height, 0:width]
    light = 0.88 + 0.08 * xs / width - 0.06 * ys / height + rng.normal(0, 0.015, (height, width))
    paper = np.stack([light, light * 0.97, light * 0.9], axis=-1)
    top = rng.integers(0, height - ink.shape[0])
    left = rng.integers(0, width - ink.shape[1])
    patch = paper[top:top + ink.shape[0], left:left + ink.shape[1]]
    paper[top:top + ink.shape[0], left:left + ink.shape[1]] = patch * (1 - ink) + np.array(ink_rgb) * ink
    return Image.fromarray((np.clip(paper, 0, 1) * 255).astype(np.uint8))


def transparent(digit, rng, canvas=(400, 400), scale=6):
    """Black ink on a fully transparent background, as drawing apps export it."""
    ink = upscale(digit, scale)
    alpha = np.zeros(canvas[::-1], dtype=np.float32)
    top, left = rng.integers(0, canvas[1] - ink.shape[0]), rng.integers(0, canvas[0] - ink.shape[1])
    alpha[top:top + ink.shape[0], left:left + ink.shape[1]] = ink
    rgba = np.zeros(canvas[::-1] + (4,), dtype=np.uint8)
    rgba[..., 3] = (alpha * 255).astype(np.uint8)
    return Image.fromarray(rgba, mode="RGBA")


def white_on_black(digit, rng, canvas=(120, 90)):
    """Light ink on a dark background, small and grey, MNIST's own polarity."""
    ink = upscale(digit, 2)
    field = np.full(canvas[::-1], 20, dtype=np.float32)
    top, left = rng.integers(0, canvas[1] - ink.shape[0]), rng.integers(0, canvas[0] - ink.shape[1])
    field[top:top + ink.shape[0], left:left + ink.shape[1]] += ink * 220
    return Image.fromarray(field.astype(np.uint8), mode="L")


STYLES = {"paper.jpg": on_paper, "transparent.png": transparent, "dark.png": white_on_black}


# ---------------------------------------------------------------- phone photos of notebook paper

PHOTO_CONDITIONS = {
    "paper": ("plain", "ruled", "squared"),
    "ink": ("black", "blue", "red"),
    "stroke": ("fine pen", "pen", "marker"),
    "shadow": ("none", "from left", "from right", "from top", "from bottom"),
    "size": ("large", "small in a big frame"),
}
INK_RGB = {"black": (0.12, 0.12, 0.14), "blue": (0.12, 0.2, 0.62), "red": (0.72, 0.12, 0.14)}


def random_conditions(rng):
    return {name: values[rng.integers(len(values))] for name, values in PHOTO_CONDITIONS.items()}


def notebook_photo(digit, rng, conditions):
    """A real MNIST digit written on notebook paper and photographed with a phone, as an RGB JPEG-ready image.

    The page is off-white with sensor noise, plain, ruled (light blue lines,
    red margin) or squared; the digit is written in black, blue or red with a
    fine pen, a pen or a marker, at a slight random slant, large or small
    somewhere in the frame; a soft shadow may darken one side of the page by
    35-55%.
    """
    from scipy import ndimage

    height, width = (1200, 1600) if conditions["size"] == "small in a big frame" else (900, 1200)
    box = int(height * (0.12 if conditions["size"] == "small in a big frame" else 0.4))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)

    tone = rng.uniform(0.86, 0.96)
    paper = np.stack([np.full((height, width), tone * c, dtype=np.float32) for c in (1.0, 0.99, 0.95)], -1)
    paper *= 1 + rng.normal(0, 0.012, (height, width, 1)).astype(np.float32)
    spacing = rng.integers(28, 40) * box / 300 + 12
    line_rgb = np.array([0.55, 0.7, 0.92], dtype=np.float32)
    offset = rng.uniform(0, spacing)
    if conditions["paper"] in ("ruled", "squared"):
        on_line = np.abs((ys + offset) % spacing - spacing / 2) < 1.2
        paper[on_line] = paper[on_line] * line_rgb
    if conditions["paper"] == "squared":
        on_line = np.abs((xs + offset) % spacing - spacing / 2) < 1.2
        paper[on_line] = paper[on_line] * line_rgb
    if conditions["paper"] == "ruled":  # the red margin line
        margin = np.abs(xs - width * rng.uniform(0.08, 0.15)) < 1.5
        paper[margin] = paper[margin] * np.array([0.95, 0.55, 0.55], dtype=np.float32)

    # The digit: scaled up, slanted, and its strokes thinned (pen) or thickened (marker).
    scale = box / 28
    ink = np.asarray(Image.fromarray(digit).resize((box, box), Image.BICUBIC), dtype=np.float32) / 255
    slant = rng.uniform(-0.2, 0.2)
    ink = ndimage.affine_transform(ink, [[1, 0], [slant, 1]], offset=[0, -slant * box / 2], order=1)
    radius = {"fine pen": -0.9, "pen": -0.6, "marker": 0.1}[conditions["stroke"]] * scale
    size = max(1, int(abs(radius)))
    ink = ndimage.grey_erosion(ink, size=size) if radius < 0 else ndimage.grey_dilation(ink, size=size)
    ink = np.clip((ink - 0.35) / 0.3, 0, 1)
    top = rng.integers(int(0.1 * height), int(0.9 * height) - box)
    left = rng.integers(int(0.1 * width), int(0.9 * width) - box)
    patch = paper[top:top + box, left:left + box]
    patch *= 1 - ink[..., None] * (1 - np.array(INK_RGB[conditions["ink"]], dtype=np.float32))

    if conditions["shadow"] != "none":  # light falling off smoothly towards one side
        along = {"from left": xs / width, "from right": 1 - xs / width,
                 "from top": ys / height, "from bottom": 1 - ys / height}[conditions["shadow"]]
        edge, softness, depth = rng.uniform(0.3, 0.7), rng.uniform(0.08, 0.2), rng.uniform(0.35, 0.55)
        paper *= (1 - depth / (1 + np.exp((along - edge) / softness)))[..., None]
    return Image.fromarray((np.clip(paper, 0, 1) * 255).astype(np.uint8))


def photo_set(images, labels, count, seed):
    """`count` photos of distinct random test digits, each under its own random conditions.

    Returns a list of (PIL image, true label, conditions). A seed gives the same set every time.
    """
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(images), size=count, replace=False)
    photos = []
    for i in picks:
        conditions = random_conditions(rng)
        photos.append((notebook_photo(np.asarray(images[i]), rng, conditions), int(labels[i]), conditions))
    return photos
