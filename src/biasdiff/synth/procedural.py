"""Procedural synthetic people: the CPU, offline stand-in for Stable Diffusion with known ground truth.

Each image renders what the seed project's prompts describe, and nothing else:
- gender shows only through the person: short black hair (male) or long black hair falling to the shoulders (female);
- occupation shows only through clothes and background: gray shirt on a neutral blurred background (none), blue scrubs with a V-neck
  in a hospital corridor (nurse), tweed jacket over a white collar in front of library shelves (philosopher);
- every context has the same soft background light behind the head and shoulders (`_backlight`), so the hair's
  outline, the gender cue, is equally visible on dark shelves and on a light wall.
Everything else varies per image from a seeded generator: horizontal position, scale, head offset, skin shading, hair shade, clothing
hue, lighting direction and strength, blur and sensor noise. Images are rendered at `size * supersample` and downsampled (box filter),
so edges are anti-aliased like a photo rather than drawn.

The same (seed, prompt, index) always gives the same pixels: `render_person(rng_for(seed, prompt, index), ...)`.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

GENDERS = {"female": "long", "male": "short"}
OCCUPATIONS = {"none": "gray shirt, neutral background", "nurse": "blue scrubs, hospital", "philosopher": "tweed jacket, library"}


@dataclass(frozen=True)
class RenderSettings:
    """How images are rendered. `size` is the output side in pixels."""

    size: int = 64
    supersample: int = 2
    noise_std: float = 4.0
    blur_max: float = 0.8


def _jitter(rng: np.random.Generator, rgb: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    """Scale each channel of `rgb` by a common brightness factor and a small independent tint."""
    b, t0, t1, t2 = rng.uniform(-1.0, 1.0, size=4).tolist()
    brightness = 1.0 + amount * b
    return tuple(
        min(255, max(0, int(c * brightness * (1.0 + amount / 3 * t)))) for c, t in zip(rgb, (t0, t1, t2))
    )


def _smooth_field(rng: np.random.Generator, side: int, base: tuple[int, int, int], spread: float) -> Image.Image:
    """A smooth colour field: a 4×4 random grid around `base`, upsampled bicubically (reads as out-of-focus)."""
    grid = np.array(base, dtype=np.float32)[None, None, :] * (1.0 + rng.uniform(-spread, spread, size=(4, 4, 1)))
    small = Image.fromarray(np.clip(grid, 0, 255).astype(np.uint8), "RGB")
    return small.resize((side, side), Image.BICUBIC)


def _background_neutral(rng: np.random.Generator, side: int) -> Image.Image:
    base = _jitter(rng, (178, 172, 164), 0.12)
    return _smooth_field(rng, side, base, 0.10)


def _background_hospital(rng: np.random.Generator, side: int) -> Image.Image:
    wall = _jitter(rng, (214, 228, 232), 0.06)
    img = _smooth_field(rng, side, wall, 0.04)
    d = ImageDraw.Draw(img)
    # ceiling light panels, a door/window on one side, a coloured hand-rail stripe, a darker floor.
    for x0 in rng.uniform(0.0, 0.8, size=2):
        d.rectangle([x0 * side, 0, (x0 + 0.18) * side, 0.06 * side], fill=(250, 252, 255))
    dx = rng.choice([0.02, 0.74]) + rng.uniform(-0.02, 0.02)
    d.rectangle([dx * side, 0.18 * side, (dx + 0.22) * side, 0.70 * side], fill=_jitter(rng, (150, 190, 205), 0.08))
    rail_y = rng.uniform(0.50, 0.58) * side
    d.rectangle([0, rail_y, side, rail_y + 0.05 * side], fill=_jitter(rng, (60, 150, 140), 0.10))
    d.rectangle([0, 0.80 * side, side, side], fill=_jitter(rng, (170, 182, 178), 0.06))
    return img.filter(ImageFilter.BoxBlur(side / 64))


_BOOK_COLOURS = [(120, 30, 30), (30, 70, 40), (40, 45, 90), (140, 100, 40), (90, 60, 35), (20, 20, 25), (150, 130, 90)]


def _background_library(rng: np.random.Generator, side: int) -> Image.Image:
    wood = _jitter(rng, (88, 56, 32), 0.12)
    img = Image.new("RGB", (side, side), wood)
    d = ImageDraw.Draw(img)
    rows = int(rng.integers(3, 5))
    row_h = side / rows
    shelf = tuple(int(c * 0.68) for c in wood)
    for r in range(rows):
        y0, y1 = r * row_h + 0.12 * row_h, (r + 1) * row_h - 0.08 * row_h
        n = int(side / (0.025 * side)) + 2  # enough books to fill the row at the narrowest width
        widths = (rng.uniform(0.025, 0.06, size=n) * side).tolist()
        gaps = (rng.uniform(0, 0.006, size=n) * side).tolist()
        tops = (y0 + rng.uniform(0, 0.25, size=n) * (y1 - y0)).tolist()
        kinds = rng.integers(len(_BOOK_COLOURS), size=n).tolist()
        shades = (1.0 + rng.uniform(-0.2, 0.2, size=n)).tolist()
        x = rng.uniform(0, 0.03) * side
        for w, gap, top, kind, shade in zip(widths, gaps, tops, kinds, shades):
            if x >= side:
                break
            colour = tuple(min(255, int(c * shade)) for c in _BOOK_COLOURS[kind])
            d.rectangle([x, top, max(x, x + w - 1), y1], fill=colour)  # books narrower than 1 px at tiny sizes
            x += w + gap
        d.rectangle([0, y1, side, y1 + 0.06 * row_h], fill=shelf)
    return img.filter(ImageFilter.BoxBlur(side / 128))


_BACKGROUNDS = {"none": _background_neutral, "nurse": _background_hospital, "philosopher": _background_library}

def _backlight(img: Image.Image, rng: np.random.Generator, head_cx: float, head_cy: float, head_rx: float,
               head_ry: float) -> Image.Image:
    """A portrait photographer's background light: a soft pale glow on the background behind the head and
    shoulders, in every context alike, so the hair's outline stands out as clearly against dark library shelves as
    against a light hospital wall (without it, long black hair merged into the shelves and female philosophers were
    the first cell to be misread as images degrade; benchmarks/RESULTS.md "Detectability per context")."""
    side = img.size[0]
    colour = np.asarray(_jitter(rng, (226, 222, 214), 0.05), dtype=np.float32)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    rx, ry = 2.8 * head_rx * rng.uniform(0.95, 1.1), 3.4 * head_ry * rng.uniform(0.95, 1.1)
    r2 = ((xx - head_cx) / rx) ** 2 + ((yy - (head_cy + 0.9 * head_ry)) / ry) ** 2
    alpha = 0.95 * np.clip(1.0 - r2, 0.0, 1.0) ** 0.3
    out = np.asarray(img, dtype=np.float32) * (1 - alpha[:, :, None]) + colour * alpha[:, :, None]
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")


_SKIN = (236, 200, 176)
_HAIR = (28, 24, 22)


def _draw_torso(d: ImageDraw.ImageDraw, rng, occupation: str, cx: float, shoulder_y: float, half_w: float, side: int, skin):
    """Clothing for each occupation, from the shoulders to the bottom edge; returns the cloth colour."""
    neck_w = 0.32 * half_w
    if occupation == "none":
        cloth = _jitter(rng, (128, 128, 130), 0.15)
    elif occupation == "nurse":
        cloth = _jitter(rng, (60, 120, 190), 0.12)
    else:
        cloth = _jitter(rng, (118, 92, 62), 0.12)
    # rounded shoulders: an ellipse over the top of a rectangle
    d.ellipse([cx - half_w, shoulder_y, cx + half_w, shoulder_y + 0.9 * half_w], fill=cloth)
    d.rectangle([cx - half_w, shoulder_y + 0.45 * half_w, cx + half_w, side], fill=cloth)
    if occupation == "none":  # crew neck
        d.ellipse([cx - neck_w, shoulder_y - 0.15 * half_w, cx + neck_w, shoulder_y + 0.25 * half_w], fill=skin)
    elif occupation == "nurse":  # V-neck and a chest pocket
        depth = rng.uniform(0.45, 0.6) * half_w
        d.polygon([(cx - neck_w, shoulder_y), (cx + neck_w, shoulder_y), (cx, shoulder_y + depth)], fill=skin)
        px = cx - 0.7 * half_w
        py = shoulder_y + 0.75 * half_w
        d.rectangle([px, py, px + 0.3 * half_w, py + 0.25 * half_w], outline=tuple(int(c * 0.75) for c in cloth))
    else:  # tweed: white collar V, dark lapels, speckled weave
        depth = rng.uniform(0.7, 0.9) * half_w
        d.polygon([(cx - neck_w, shoulder_y), (cx + neck_w, shoulder_y), (cx, shoulder_y + depth)], fill=(235, 235, 230))
        lapel = tuple(int(c * 0.85) for c in cloth)
        d.polygon([(cx - neck_w, shoulder_y), (cx - 0.05 * half_w, shoulder_y + depth * 1.25), (cx - 0.55 * half_w, shoulder_y + 0.3 * half_w)], fill=lapel)
        d.polygon([(cx + neck_w, shoulder_y), (cx + 0.05 * half_w, shoulder_y + depth * 1.25), (cx + 0.55 * half_w, shoulder_y + 0.3 * half_w)], fill=lapel)
    return cloth


@functools.lru_cache(maxsize=8)
def _weave(side: int) -> np.ndarray:
    """A diagonal two-tone weave pattern (side, side), ±10 grey levels."""
    idx = np.add.outer(np.arange(side), np.arange(side)) * 1.7
    return (10.0 * np.sign(np.sin(idx))).astype(np.float32)


def _tweed_texture(img: np.ndarray, rng: np.random.Generator, mask: np.ndarray) -> None:
    """Speckle the jacket pixels (mask) with a fine two-tone weave, in place."""
    speck = rng.standard_normal(size=mask.shape, dtype=np.float32) * 10.0
    img += ((speck + _weave(mask.shape[0])) * mask)[:, :, None]


def render_person(rng: np.random.Generator, gender: str, occupation: str, settings: RenderSettings = RenderSettings()) -> np.ndarray:
    """Render one person; returns uint8 (size, size, 3).

    `gender` in GENDERS (female, male); `occupation` in OCCUPATIONS (none, nurse, philosopher). The generator drives every random
    choice, so the same generator state gives the same image.
    """
    if gender not in GENDERS:
        raise ValueError(f"gender {gender!r} cannot be rendered; valid: {sorted(GENDERS)}")
    if occupation not in OCCUPATIONS:
        raise ValueError(f"occupation {occupation!r} cannot be rendered; valid: {sorted(OCCUPATIONS)}")
    side = settings.size * settings.supersample
    img = _BACKGROUNDS[occupation](rng, side)

    scale = rng.uniform(0.85, 1.12)
    cx = side * (0.5 + rng.uniform(-0.08, 0.08))
    head_rx = 0.12 * side * scale
    head_ry = head_rx * rng.uniform(1.18, 1.32)
    head_cy = side * (0.36 + rng.uniform(-0.05, 0.05))
    head_cx = cx + rng.uniform(-0.04, 0.04) * side
    shoulder_y = head_cy + 1.45 * head_ry
    half_w = head_rx * rng.uniform(2.3, 2.7)
    skin = _jitter(rng, _SKIN, 0.10)
    hair = _jitter(rng, _HAIR, 0.35)
    long_hair = GENDERS[gender] == "long"
    img = _backlight(img, rng, head_cx, head_cy, head_rx, head_ry)
    d = ImageDraw.Draw(img)

    if long_hair:  # hair behind the head, falling to the chest
        length = head_cy + head_ry * rng.uniform(2.3, 2.8)
        d.rounded_rectangle(
            [head_cx - 1.25 * head_rx, head_cy - 1.1 * head_ry, head_cx + 1.25 * head_rx, length], radius=head_rx, fill=hair
        )
    cloth = _draw_torso(d, rng, occupation, cx, shoulder_y, half_w, side, skin)
    # neck, ears, head
    d.rectangle([head_cx - 0.42 * head_rx, head_cy + 0.6 * head_ry, head_cx + 0.42 * head_rx, shoulder_y + 0.1 * head_ry], fill=tuple(int(c * 0.93) for c in skin))
    for sx in (-1, 1):
        d.ellipse([head_cx + sx * 0.98 * head_rx - 0.16 * head_rx, head_cy - 0.1 * head_ry, head_cx + sx * 0.98 * head_rx + 0.16 * head_rx, head_cy + 0.25 * head_ry], fill=skin)
    d.ellipse([head_cx - head_rx, head_cy - head_ry, head_cx + head_rx, head_cy + head_ry], fill=skin)
    # face: eyes, brows, nose shadow, mouth
    eye_y = head_cy - 0.05 * head_ry
    for sx in (-1, 1):
        ex = head_cx + sx * 0.38 * head_rx
        d.ellipse([ex - 0.12 * head_rx, eye_y - 0.07 * head_ry, ex + 0.12 * head_rx, eye_y + 0.07 * head_ry], fill=(45, 35, 30))
        d.line([ex - 0.18 * head_rx, eye_y - 0.2 * head_ry, ex + 0.18 * head_rx, eye_y - 0.22 * head_ry], fill=hair, width=max(1, side // 64))
    d.line([head_cx, eye_y + 0.1 * head_ry, head_cx - 0.06 * head_rx, eye_y + 0.38 * head_ry], fill=tuple(int(c * 0.8) for c in skin), width=max(1, side // 96))
    mouth_y = head_cy + 0.5 * head_ry
    d.line([head_cx - 0.25 * head_rx, mouth_y, head_cx + 0.25 * head_rx, mouth_y], fill=(160, 80, 80), width=max(1, side // 80))
    # hair on top: a cap down to the forehead (short) or a fuller cap with side locks over the shoulders (long)
    cap_bottom = head_cy - rng.uniform(0.25, 0.4) * head_ry
    d.chord([head_cx - 1.06 * head_rx, head_cy - 1.12 * head_ry, head_cx + 1.06 * head_rx, 2 * cap_bottom - head_cy + 1.12 * head_ry], 180, 360, fill=hair)
    if long_hair:
        for sx in (-1, 1):
            x_in = head_cx + sx * 0.85 * head_rx
            x_out = head_cx + sx * 1.3 * head_rx
            d.polygon([(x_in, cap_bottom), (x_out, cap_bottom), (x_out + sx * 0.1 * head_rx, length), (x_in, length - 0.3 * head_ry)], fill=hair)

    small = img.resize((settings.size, settings.size), Image.BOX)
    out = np.asarray(small, dtype=np.float32).copy()
    if occupation == "philosopher":  # weave the jacket (cloth-coloured pixels below the shoulders) at output resolution
        jacket = (np.abs(out - np.asarray(cloth, dtype=np.float32)).max(axis=2) < 40).astype(np.float32)
        jacket[: int(shoulder_y / settings.supersample)] = 0.0
        _tweed_texture(out, rng, jacket)
    # lighting: overall exposure times a linear gradient in a random direction
    angle = rng.uniform(0, 2 * np.pi)
    strength = rng.uniform(0.0, 0.25)
    yy, xx = np.mgrid[0 : settings.size, 0 : settings.size].astype(np.float32) / settings.size - 0.5
    light = rng.uniform(0.85, 1.12) * (1.0 + strength * (np.cos(angle) * xx + np.sin(angle) * yy))
    out *= light[:, :, None]
    out += rng.normal(0.0, rng.uniform(0.0, settings.noise_std), size=out.shape) if settings.noise_std > 0 else 0.0
    result = Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")
    blur = rng.uniform(0.0, settings.blur_max) if settings.blur_max > 0 else 0.0
    if blur > 0.05:
        result = result.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(result)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 (H, W, 3) image (deterministic for equal pixels)."""
    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
