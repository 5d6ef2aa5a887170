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
