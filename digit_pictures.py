"""Pictures and strokes as people make them, for the tests and the benchmarks alike: real MNIST test
digits on paper and in phone photos, drawn with pens thin and fat; words, scribbles, shapes and noise;
digits drawn with the mouse on the draw page."""
import io
import math
import os
import shutil

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


# ---------------------------------------------------------------- digits and non-digits drawn with a pen

def thin_to_centreline(mask):
    """Zhang and Suen's thinning (1984): the one-pixel centreline of a binary shape's strokes."""
    image = np.pad(mask.astype(np.uint8), 1)
    while True:
        removed = 0
        for step in (0, 1):
            p = image
            # p2..p9: the 8 neighbours clockwise from the one above
            n = [np.roll(p, shift, axis=(0, 1)) for shift in ((1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0),
                                                              (-1, 1), (0, 1), (1, 1))]
            count = sum(n)
            transitions = sum((n[i] == 0) & (n[(i + 1) % 8] == 1) for i in range(8))
            if step == 0:
                side = (n[0] * n[2] * n[4] == 0) & (n[2] * n[4] * n[6] == 0)
            else:
                side = (n[0] * n[2] * n[6] == 0) & (n[0] * n[4] * n[6] == 0)
            drop = (p == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & side
            removed += int(drop.sum())
            image = np.where(drop, 0, image).astype(np.uint8)
        if not removed:
            return image[1:-1, 1:-1].astype(bool)


def prune_spurs(line, length):
    """The centreline without the short branches that thinning leaves where a stroke was blotchy: end
    pixels are taken off `length` times (a pen stroke's own ends shorten by as much)."""
    line = line.copy()
    for _ in range(length):
        padded = np.pad(line, 1).astype(np.uint8)
        neighbours = sum(np.roll(padded, (dy, dx), axis=(0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                         if dy or dx)[1:-1, 1:-1]
        line &= ~(neighbours <= 1)
    return line


def mnist_centreline(digit, side):
    """An MNIST digit's pen path, as (y, x) pixel pairs to join, in a side x side box."""
    scale = 8
    big = upscale(digit, scale) > 0.5
    line = prune_spurs(thin_to_centreline(big), 8)
    ys, xs = np.nonzero(line)
    points = set(zip(ys.tolist(), xs.tolist()))
    factor = side / (28 * scale)
    segments = []
    for y, x in points:  # each pixel joined to its right and lower neighbours: the path, unbroken
        for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
            if (y + dy, x + dx) in points:
                segments.append(((x * factor, y * factor), ((x + dx) * factor, (y + dy) * factor)))
    return segments


def strokes_centreline(strokes, side):
    """Mouse-style strokes (lists of 0-1 points) as segments in a side x side box."""
    segments = []
    for stroke in strokes:
        points = [(x * side, y * side) for x, y in stroke]
        segments += list(zip(points[:-1], points[1:])) or [(points[0], points[0])]
    return segments


def pen_ink(segments, size, width, rng=None, pressure=0.0, offset=(0, 0)):
    """Ink (0-1) of a round pen `width` pixels wide drawn along `segments`, anti-aliased, on a size canvas.

    `pressure` varies the width smoothly along the strokes by up to that share, as a ballpoint does.
    """
    from PIL import ImageDraw
    from scipy import ndimage

    canvas = Image.new("L", size, 0)
    drawing = ImageDraw.Draw(canvas)
    for (x0, y0), (x1, y1) in segments:
        drawing.line([(x0 + offset[0], y0 + offset[1]), (x1 + offset[0], y1 + offset[1])], fill=255, width=1)
    centre = np.asarray(canvas) > 0
    distance = ndimage.distance_transform_edt(~centre)
    radius = np.full(centre.shape, width / 2, dtype=np.float32)
    if pressure and rng is not None:
        field = ndimage.zoom(rng.uniform(-1, 1, (6, 6)), (size[1] / 6, size[0] / 6), order=3)[:size[1], :size[0]]
        radius = radius * (1 + pressure * np.clip(field, -1, 1))
    return np.clip(radius + 0.5 - distance, 0, 1).astype(np.float32)


PEN_SHARES = (0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.15)  # the pen's width as a share of the digit's height


def centreline_extent(segments):
    ys = [y for segment in segments for _, y in segment]
    xs = [x for segment in segments for x, _ in segment]
    return min(xs), min(ys), max(xs), max(ys)


def paper_with_ink(ink, rng, photo, ink_rgb=(0.1, 0.1, 0.12)):
    """Dark ink on white paper, or on a phone photo's paper: an off-white tone, sensor noise, a soft shadow
    from one side, sometimes ruled lines, and coloured ink."""
    height, width = ink.shape
    if not photo:
        paper = np.ones((height, width, 3), dtype=np.float32)
    else:
        tone = rng.uniform(0.8, 0.95)
        paper = np.full((height, width, 3), tone, dtype=np.float32) * np.array([1.0, 0.98, 0.93], dtype=np.float32)
        paper *= 1 + rng.normal(0, 0.015, (height, width, 1)).astype(np.float32)
        if rng.random() < 0.4:  # ruled paper: faint blue lines
            ys = np.arange(height)[:, None]
            spacing = rng.uniform(0.05, 0.09) * height
            on_line = np.abs((ys + rng.uniform(0, spacing)) % spacing - spacing / 2) < max(0.6, height / 900)
            paper[np.broadcast_to(on_line, (height, width))] *= np.array([0.6, 0.75, 0.95], dtype=np.float32)
        ink_rgb = [(0.1, 0.1, 0.12), (0.12, 0.2, 0.6), (0.2, 0.2, 0.25)][rng.integers(3)]
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        along = [xs / width, 1 - xs / width, ys / height, 1 - ys / height][rng.integers(4)]
        depth = rng.uniform(0.2, 0.5)
        paper *= (1 - depth / (1 + np.exp((along - rng.uniform(0.3, 0.7)) / rng.uniform(0.08, 0.2))))[..., None]
    paper = paper * (1 - ink[..., None]) + ink[..., None] * np.array(ink_rgb, dtype=np.float32) * paper
    return np.clip(paper, 0, 1)


def as_photo_file(paper, rng, blur):
    """A paper array as a JPEG-compressed PIL image after a camera's blur (sigma in pixels)."""
    import io
    from scipy import ndimage

    if blur:
        paper = ndimage.gaussian_filter(paper, sigma=(blur, blur, 0))
    image = Image.fromarray((np.clip(paper, 0, 1) * 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=int(rng.integers(60, 96)))
    buffer.seek(0)
    return Image.open(buffer)


def pen_conditions(rng, pen_share=None, canvas_side=None):
    """Random conditions of a picture drawn with a pen: its width (share of the digit's height), the canvas,
    the digit's size in it, blur, and white paper or a photo's."""
    canvas_side = canvas_side or int(rng.integers(200, 3001))
    return {"pen share": pen_share or PEN_SHARES[rng.integers(len(PEN_SHARES))],
            "canvas": canvas_side,
            "digit height": rng.uniform(0.3, 0.75),
            "blur": float(rng.choice([0, 0, 0.5, 1.0, 2.0])) * canvas_side / 1000,
            "photo": bool(rng.random() < 0.5)}


def draw_with_pen(segments, rng, conditions):
    """A picture (PIL image) of `segments` drawn with a pen under `conditions` (pen_conditions)."""
    x0, y0, x1, y1 = centreline_extent(segments)
    side = conditions["canvas"]
    aspect = rng.uniform(0.75, 1.33)
    size = (side, max(64, int(side * aspect))) if rng.random() < 0.5 else (max(64, int(side * aspect)), side)
    target = conditions["digit height"] * min(size)
    factor = target / max(y1 - y0, 1e-6)
    scaled = [((ax * factor, ay * factor), (bx * factor, by * factor)) for (ax, ay), (bx, by) in segments]
    width = max(x1 - x0, 1) * factor
    pen = conditions["pen share"] * target
    offset = (rng.uniform(pen, max(pen + 1, size[0] - width - pen)) - x0 * factor,
              rng.uniform(pen, max(pen + 1, size[1] - target - pen)) - y0 * factor)
    ink = pen_ink(scaled, size, pen, rng, pressure=rng.uniform(0, 0.3), offset=offset)
    return as_photo_file(paper_with_ink(ink, rng, conditions["photo"]), rng, conditions["blur"])


def pen_digit_set(images, labels, count, seed, **fixed):
    """`count` real MNIST test digits redrawn along their centrelines with a pen; (image, label, conditions)."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(images), size=count, replace=False)
    pictures = []
    for i in picks:
        conditions = pen_conditions(rng, **fixed)
        segments = mnist_centreline(np.asarray(images[i]), 224)
        pictures.append((draw_with_pen(segments, rng, conditions), int(labels[i]), conditions))
    return pictures


# Things that are not a digit, drawn or printed the way people make them.
WORDS = ("hello", "the", "cat", "note", "music", "house", "yes", "no", "menu", "total", "pay", "MNIST", "Hi",
         "abc", "word", "sale", "open", "name", "date", "time", "OK", "page", "help", "exit", "stop")


def font_files():
    """TrueType fonts on this machine (Debian's fonts-dejavu, fonts-liberation, ...), else none."""
    from pathlib import Path

    roots = [Path("/usr/share/fonts"), Path("/usr/local/share/fonts")]
    symbols = ("d050000l", "dingbat", "symbol", "z003")  # pictures and script, not letters
    return sorted(str(p) for root in roots if root.is_dir() for p in root.rglob("*.[ot]tf")
                  if not any(name in p.name.lower() for name in symbols))


def printed_word(rng, side):
    """A word in a random font, as ink (0-1) on a canvas."""
    from PIL import ImageDraw, ImageFont

    fonts = font_files()
    size = int(side * rng.uniform(0.12, 0.3))
    font = ImageFont.truetype(fonts[rng.integers(len(fonts))], size) if fonts else ImageFont.load_default(size)
    word = WORDS[rng.integers(len(WORDS))]
    canvas = Image.new("L", (side, side), 0)
    drawing = ImageDraw.Draw(canvas)
    left, top, right, bottom = drawing.textbbox((0, 0), word, font=font)
    x = rng.uniform(0, max(1, side - (right - left))) - left
    y = rng.uniform(0, max(1, side - (bottom - top))) - top
    drawing.text((x, y), word, fill=255, font=font)
    return np.asarray(canvas, dtype=np.float32) / 255


def scribble_strokes(rng):
    """A random looping scribble: a smooth wandering path with many turns."""
    points, heading, position = [], rng.uniform(0, 2 * np.pi), np.array([0.5, 0.5])
    turn = rng.uniform(0.2, 0.6)
    for _ in range(int(rng.integers(60, 160))):
        heading += rng.normal(0, turn)
        position = np.clip(position + 0.03 * np.array([np.cos(heading), np.sin(heading)]), 0.1, 0.9)
        points.append(tuple(position))
    return [points]


def shape_strokes(rng):
    """A star, a smiley, a grid, a triangle, a spiral, a hash sign, a heart, an arrow or a house."""
    def arc(cx, cy, r, start, end, steps=32, ry=None):
        return [(cx + r * np.cos(a), cy + (ry or r) * np.sin(a)) for a in np.linspace(start, end, steps)]

    kind = ("star", "smiley", "grid", "triangle", "spiral", "hash", "heart", "arrow", "house")[rng.integers(9)]
    if kind == "star":
        angles = -np.pi / 2 + np.arange(6) * 4 * np.pi / 5
        strokes = [[(0.5 + 0.4 * np.cos(a), 0.5 + 0.4 * np.sin(a)) for a in angles]]
    elif kind == "smiley":
        strokes = [arc(0.5, 0.5, 0.4, 0, 2 * np.pi, 48), arc(0.36, 0.38, 0.04, 0, 2 * np.pi, 12),
                   arc(0.64, 0.38, 0.04, 0, 2 * np.pi, 12), arc(0.5, 0.52, 0.22, 0.2, np.pi - 0.2)]
    elif kind == "grid":
        n = int(rng.integers(3, 6))
        ticks = np.linspace(0.1, 0.9, n)
        strokes = [[(t, 0.1), (t, 0.9)] for t in ticks] + [[(0.1, t), (0.9, t)] for t in ticks]
    elif kind == "triangle":
        strokes = [[(0.5, 0.1), (0.9, 0.85), (0.1, 0.85), (0.5, 0.1)]]
    elif kind == "spiral":
        turns = np.linspace(0, 6 * np.pi, 120)
        strokes = [[(0.5 + 0.4 * t / turns[-1] * np.cos(t), 0.5 + 0.4 * t / turns[-1] * np.sin(t)) for t in turns]]
    elif kind == "hash":
        strokes = [[(0.35, 0.1), (0.3, 0.9)], [(0.68, 0.1), (0.63, 0.9)], [(0.1, 0.35), (0.9, 0.35)],
                   [(0.1, 0.65), (0.9, 0.65)]]
    elif kind == "heart":
        ts = np.linspace(0, 2 * np.pi, 64)
        strokes = [[(0.5 + 0.025 * 16 * np.sin(t) ** 3,
                     0.45 - 0.025 * (13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)))
                    for t in ts]]
    elif kind == "arrow":
        strokes = [[(0.1, 0.5), (0.9, 0.5)], [(0.65, 0.25), (0.9, 0.5), (0.65, 0.75)]]
    else:  # a house: a square with a roof
        strokes = [[(0.2, 0.45), (0.2, 0.9), (0.8, 0.9), (0.8, 0.45), (0.2, 0.45), (0.5, 0.1), (0.8, 0.45)]]
    lean = rng.uniform(-0.15, 0.15)
    return kind, [[(x + lean * (0.5 - y) + rng.normal(0, 0.004), y + rng.normal(0, 0.004)) for x, y in stroke]
                  for stroke in strokes]


def noise_ink(rng, side):
    """Noise: sensor-like grain, blotches, or salt and pepper."""
    from scipy import ndimage

    kind = rng.integers(3)
    if kind == 0:
        return rng.uniform(0, 1, (side, side)).astype(np.float32)
    if kind == 1:
        blotches = ndimage.gaussian_filter(rng.normal(0, 1, (side, side)), side / 40)
        return np.clip((blotches - blotches.mean()) / blotches.std(), 0, 1).astype(np.float32)
    return (rng.random((side, side)) < 0.05).astype(np.float32)


NON_DIGIT_KINDS = ("word", "scribble", "shape", "noise")


def non_digit_set(count, seed):
    """`count` pictures that are not one digit: printed words, scribbles, shapes and noise, on white paper or
    a photo's, at 200-2000 px. Returns (image, kind)."""
    rng = np.random.default_rng(seed)
    pictures = []
    for i in range(count):
        kind = NON_DIGIT_KINDS[i % len(NON_DIGIT_KINDS)]
        side = int(rng.integers(200, 2001))
        pen = side * rng.uniform(0.005, 0.05)
        if kind == "word":
            ink = printed_word(rng, side)
        elif kind == "noise":
            ink = noise_ink(rng, side)
        else:
            strokes = scribble_strokes(rng) if kind == "scribble" else shape_strokes(rng)[1]
            ink = pen_ink(strokes_centreline(strokes, side), (side, side), pen, rng, pressure=0.2)
        photo = bool(rng.random() < 0.5)
        pictures.append((as_photo_file(paper_with_ink(ink, rng, photo), rng, float(rng.choice([0, 0.5, 1.0]))),
                         kind))
    return pictures


# ---------------------------------------------------------------- numbers

# The gap between neighbouring digits' ink, in pixels at MNIST's 28-pixel scale.
GAPS = {"separated": (2, 8), "touching": (0, 0), "overlapping": (-2, -1)}


def number_ink(digits, rng, gap_kind, scale=4, each_digit=False, smooth=True):
    """MNIST digits (28x28 uint8 arrays) side by side as one ink map (0-1): gaps of `gap_kind`, each digit
    resized by up to 15% and moved up or down by up to a tenth of its height, the line sloping by up to 6
    degrees, enlarged `scale` times (pixel by pixel unless `smooth`, as a small picture zoomed). With
    `each_digit`, also each digit's own ink map, placed the same way (where each digit lies, for labelling
    the pieces of the number)."""
    low, high = GAPS[gap_kind]
    height = 40
    pieces, cursor = [], 0
    for digit in digits:
        cols = np.nonzero(digit.max(axis=0))[0]
        crop = Image.fromarray(digit[:, cols.min():cols.max() + 1])
        size = rng.uniform(0.85, 1.15)
        crop = crop.resize((max(1, round(crop.width * size)), max(1, round(28 * size))), Image.BILINEAR)
        top = int(round((height - crop.height) / 2 + rng.uniform(-2.8, 2.8)))
        pieces.append((crop, cursor, top))
        cursor += crop.width + int(rng.integers(low, high + 1))
    angle = rng.uniform(-6, 6)

    def line_of(placed):
        line = np.zeros((height, cursor + 8), dtype=np.float32)
        for crop, left, top in placed:
            region = line[max(top, 0):top + crop.height, left + 4:left + 4 + crop.width]
            ink = np.asarray(crop, dtype=np.float32)[max(-top, 0):][:region.shape[0], :region.shape[1]] / 255
            np.maximum(region, ink, out=region)
        picture = Image.fromarray(line).rotate(angle, resample=Image.BILINEAR, expand=True)
        picture = picture.resize((picture.width * scale, picture.height * scale),
                                 Image.BILINEAR if smooth else Image.NEAREST)
        return np.pad(np.clip(np.asarray(picture, dtype=np.float32), 0, 1), scale * 6)  # a margin of paper

    if not each_digit:
        return line_of(pieces)
    return line_of(pieces), [line_of([piece]) for piece in pieces]


# The gap between neighbouring pen-drawn digits' ink where they come closest, in shares of a digit's height:
# at 0 the inks meet, below 0 one digit's ink reaches into the other's.
INK_GAPS = {"separated": (0.1, 0.3), "touching": (0.0, 0.0), "overlapping": (-0.1, -0.05)}


def pen_number(digits, rng, gap_kind, pen, height=200):
    """A number written with a round pen `pen` pixels wide, as ink (0-1): each digit MOUSE_DIGITS's strokes
    about `height` pixels tall, resized by up to 10%, leaning -3 to 10 degrees and moved up or down by up to
    a twentieth of its height; each placed so that its ink comes INK_GAPS[gap_kind] of the height from the
    ink before it, in the rows where they come closest (the MNIST numbers' GAPS are between boxes, so their
    "touching" digits' ink seldom meets)."""
    box = height / 0.66  # MOUSE_DIGITS fill about 0.66 of their box's height
    line = np.zeros((int(box * 1.4), int(box * len(digits)) + 200), dtype=np.float32)
    reach = np.full(line.shape[0], -10**6)  # the rightmost ink so far in each row
    for digit in digits:
        strokes = transformed(MOUSE_DIGITS[digit], rng.uniform(0.9, 1.1), rng.uniform(-3, 10),
                              (0.5, 0.5 + rng.uniform(-0.05, 0.05) * 0.66))
        ink = pen_ink(strokes_centreline(strokes, box), (int(box), int(box)), pen, rng, pressure=0.3)
        cols = np.flatnonzero(ink.max(axis=0) > 0.5)
        ink = ink[:, cols[0]:cols[-1] + 1]
        inked = ink > 0.5
        rows = np.flatnonzero(inked.any(axis=1))
        left = inked[rows].argmax(axis=1)  # the digit's leftmost ink in each of its rows
        gap = round(rng.uniform(*INK_GAPS[gap_kind]) * height)
        top = int(box * 0.2)
        x = 100 if reach.max() < 0 else int(np.max(reach[top + rows] - left)) + 1 + gap
        region = line[top:top + ink.shape[0], x:x + ink.shape[1]]
        np.maximum(region, ink, out=region)
        right = x + inked.shape[1] - 1 - inked[rows, ::-1].argmax(axis=1)
        reach[top + rows] = np.maximum(reach[top + rows], right)
    used = np.flatnonzero(line.max(axis=0) > 0)
    return line[:, :used[-1] + 100]


def number_set(images, labels, count, seed, gap_kind, lengths=(2, 8), photo=False, smooth=True):
    """`count` numbers of `lengths[0]`-`lengths[1]` real MNIST test digits: (PIL image, the number as a string);
    enlarged pixel by pixel unless `smooth` (number_ink)."""
    rng = np.random.default_rng(seed)
    numbers = []
    for _ in range(count):
        picks = rng.choice(len(images), size=int(rng.integers(lengths[0], lengths[1] + 1)), replace=False)
        ink = number_ink([np.asarray(images[i]) for i in picks], rng, gap_kind, smooth=smooth)
        if photo:
            image = as_photo_file(paper_with_ink(ink, rng, photo=True), rng, blur=float(rng.choice([0, 0.5, 1.0])))
        else:
            image = Image.fromarray(((1 - ink) * 255).astype(np.uint8))
        numbers.append((image, "".join(str(int(labels[i])) for i in picks)))
    return numbers


def small_in_a_photo(picture, height, at, size=(4032, 3024), seed=0):
    """A dark-on-white picture (a written number) shrunk to `height` pixels and photographed at `at` (left,
    top) on paper filling a phone photo of `size`: (the JPEG image, the picture's box in it)."""
    small = picture.resize((picture.width * height // picture.height, height), Image.BILINEAR)
    ink = np.zeros(size[::-1], dtype=np.float32)
    ink[at[1]:at[1] + height, at[0]:at[0] + small.width] = 1 - np.asarray(small, dtype=np.float32) / 255
    rng = np.random.default_rng(seed)
    return as_photo_file(paper_with_ink(ink, rng, photo=True), rng, blur=1.5), (*at, small.width, height)


def as_jpeg(image, quality=70):
    """An image as the JPEG file a phone would send."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return buffer


# ---------------------------------------------------------------- the mouse, on the draw page

# Digits as a person draws them with the mouse: strokes of points in a 0-1 box, y pointing down.
def arc(cx, cy, rx, ry, start, end, steps=24):
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(start, end, steps)]


MOUSE_DIGITS = {
    0: [arc(0.5, 0.5, 0.2, 0.3, -90, 275)],
    1: [[(0.52, 0.18), (0.48, 0.82)]],
    2: [arc(0.5, 0.36, 0.17, 0.16, -170, 35) + [(0.3, 0.8), (0.72, 0.8)]],
    3: [arc(0.48, 0.34, 0.16, 0.14, -160, 90) + arc(0.48, 0.64, 0.18, 0.16, -90, 150)],
    4: [[(0.55, 0.18), (0.28, 0.6), (0.76, 0.6)], [(0.62, 0.35), (0.62, 0.85)]],
    5: [[(0.7, 0.2), (0.37, 0.2), (0.34, 0.47)] + arc(0.49, 0.63, 0.18, 0.17, -125, 150)],
    6: [[(0.64, 0.17), (0.45, 0.35), (0.35, 0.62)] + arc(0.5, 0.65, 0.15, 0.15, 180, 540)],
    7: [[(0.28, 0.2), (0.72, 0.2), (0.45, 0.84)]],
    8: [arc(0.5, 0.33, 0.13, 0.14, 90, 450) + arc(0.5, 0.64, 0.17, 0.17, -90, 270)],
    9: [arc(0.5, 0.36, 0.15, 0.15, 0, 360) + [(0.65, 0.36), (0.6, 0.84)]],
}


def system_browser():
    """A Chromium-family browser: $BROWSER if set (the GitHub workflow sets it), else one on the PATH."""
    if os.environ.get("BROWSER"):
        return os.environ["BROWSER"]
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
    return next((shutil.which(name) for name in names if shutil.which(name)), None)


def draw(page, strokes):
    """Press the mouse, move it along each stroke, release; then wait until the page has read the drawing."""
    box = page.locator("#canvas").bounding_box()
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0] * box["width"], box["y"] + stroke[0][1] * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=3)
        page.mouse.up()
    page.wait_for_selector('#answer[aria-busy="false"]')  # the last drawing has been read


def transformed(strokes, scale=1.0, slant=0.0, centre=(0.5, 0.5)):
    """Strokes resized about the box's middle, leaning `slant` degrees to the right, moved to `centre`."""
    lean = math.tan(math.radians(slant))
    return [[(centre[0] + scale * ((x - 0.5) + lean * (0.5 - y)), centre[1] + scale * (y - 0.5)) for x, y in stroke]
            for stroke in strokes]


# An 8 drawn in one go, as many people do: an S down, then back up through the middle.
FIGURE_EIGHT = [[(0.5 + 0.16 * math.sin(2 * a), 0.5 - 0.32 * math.cos(a)) for a in np.linspace(0, 2 * math.pi, 48)]]
STACKED_EIGHT = MOUSE_DIGITS[8]  # two loops, one on the other
# Heights from about half the box to nearly all of it, upright and leaning 15 degrees.
EIGHTS = [(name, strokes, scale, slant) for name, strokes in (("figure", FIGURE_EIGHT), ("stacked", STACKED_EIGHT))
          for scale in (0.75, 0.95, 1.1, 1.25, 1.4) for slant in (0, 15)]
# Every digit five ways: as drawn, large and leaning, small, small in a corner, leaning off-centre.
VARIANTS = [dict(), dict(scale=1.3, slant=10), dict(scale=0.6, slant=5), dict(scale=0.45, centre=(0.33, 0.38)),
            dict(scale=0.8, slant=15, centre=(0.56, 0.55))]


def number_strokes(digits, variants, height=0.6):
    """A number drawn with the mouse on the page's wide canvas (three times as wide as high): each digit's
    strokes (MOUSE_DIGITS, resized and leaning by its variant) in a cell `height` of the canvas high,
    side by side, in 0-1 coordinates of the canvas."""
    cell = height / 3  # of the canvas's width: a square cell
    left = (1 - cell * len(digits)) / 2
    strokes = []
    for k, (digit, variant) in enumerate(zip(digits, variants)):
        for stroke in transformed(MOUSE_DIGITS[digit], **variant):
            strokes.append([(left + cell * (k + x), (1 - height) / 2 + height * y) for x, y in stroke])
    return strokes


# Four-digit numbers as people write them with the mouse: each digit upright or leaning, a little larger
# or smaller than its neighbours.
NUMBER_VARIANTS = [dict(), dict(scale=0.85, slant=10), dict(scale=1.1), dict(scale=0.9, slant=-5)]
MOUSE_NUMBERS = ["2026", "1984", "3750", "4619", "8023", "5371", "9046", "7158", "6402", "3089"]


def written_numbers():
    """MOUSE_NUMBERS as drawn: (the number, its strokes), its digits' variants turning from one number to
    the next."""
    return [(number, number_strokes([int(c) for c in number], [NUMBER_VARIANTS[(i + k) % 4] for k in range(4)]))
            for i, number in enumerate(MOUSE_NUMBERS)]
