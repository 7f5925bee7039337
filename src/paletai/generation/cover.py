"""Cover images: a 1200x630 title card per game, and the palette the offline games share.

`render_cover` and `render_screenshot_cover` are pure and synchronous (a hundred milliseconds
or more of CPU each): async code runs them in `CoverRenderer`'s process pool, away from the event
loop's GIL.
"""

from __future__ import annotations

import asyncio
import colorsys
import hashlib
import io
import logging
import multiprocessing
import random
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache, partial

import anyio
from PIL import Image, ImageDraw, ImageFilter, ImageFont

log = logging.getLogger(__name__)

WIDTH, HEIGHT = 1200, 630
# zlib level 1: a third faster to encode than 3 for ~10 % more bytes (bench/bench_generation.py).
PNG_COMPRESS_LEVEL = 1

Palette = tuple[str, str, str]  # (background, foreground, accent) as "#rrggbb"
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

# Colour words a prompt may use, and the (background, foreground, accent) each one means.
_NAMED_PALETTES: dict[str, Palette] = {
    "neon": ("#0b0221", "#f6f0ff", "#39ff14"),
    "cyber": ("#070b1e", "#e8f7ff", "#ff2fd6"),
    "ocean": ("#03223f", "#e2f6ff", "#22c3ff"),
    "sea": ("#03223f", "#e2f6ff", "#22c3ff"),
    "water": ("#03223f", "#e2f6ff", "#22c3ff"),
    "forest": ("#0e2618", "#ebf7e3", "#7fd64b"),
    "jungle": ("#0e2618", "#ebf7e3", "#7fd64b"),
    "lava": ("#1c0602", "#fff0e2", "#ff5a1f"),
    "fire": ("#1c0602", "#fff0e2", "#ff5a1f"),
    "volcano": ("#1c0602", "#fff0e2", "#ff5a1f"),
    "pastel": ("#fdf1f6", "#4a3a5a", "#e86fa6"),
    "candy": ("#fff0f7", "#4d2343", "#ff4fa3"),
    "retro": ("#251d14", "#f6e6c4", "#f0a431"),
    "vintage": ("#251d14", "#f6e6c4", "#f0a431"),
    "arcade": ("#110a2b", "#fdf6ff", "#ffd23f"),
    "dark": ("#0c0d11", "#e7e7ea", "#8c7dff"),
    "night": ("#0a0e24", "#e7ecff", "#7aa2ff"),
    "midnight": ("#0a0e24", "#e7ecff", "#7aa2ff"),
    "light": ("#f5f6f8", "#20232a", "#3867ff"),
    "snow": ("#eef5fb", "#1f2f45", "#3aa0e8"),
    "ice": ("#eaf6fb", "#163246", "#19a7d8"),
    "winter": ("#eef5fb", "#1f2f45", "#3aa0e8"),
    "desert": ("#f6e7c8", "#4a3216", "#d9822b"),
    "sunset": ("#2a0f2e", "#fff0e6", "#ff8a3d"),
    "gold": ("#17130a", "#fff7df", "#ffc531"),
    "golden": ("#17130a", "#fff7df", "#ffc531"),
    "red": ("#1b0407", "#ffe9ec", "#ff3049"),
    "blue": ("#06122e", "#e6eeff", "#3d8bff"),
    "green": ("#04190d", "#e5fbe9", "#2fe07a"),
    "purple": ("#150826", "#f3eaff", "#b066ff"),
    "violet": ("#150826", "#f3eaff", "#b066ff"),
    "pink": ("#24061a", "#ffe8f5", "#ff5cc0"),
    "orange": ("#1e0d02", "#fff1e4", "#ff8c1a"),
    "yellow": ("#1a1703", "#fffbe0", "#ffe135"),
    "white": ("#f7f7f7", "#1e1e22", "#ff4d6d"),
    "black": ("#050505", "#f0f0f0", "#00e5ff"),
    "monochrome": ("#101010", "#f2f2f2", "#bdbdbd"),
}

_FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "DejaVuSans-Bold.ttf",
)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c * 255))):02x}" for c in rgb)


def palette_for(prompt: str, seed: str) -> Palette:
    """The game's colours: from the first colour word in the prompt, else derived from the seed."""
    for word in _words(prompt):
        if word in _NAMED_PALETTES:
            return _NAMED_PALETTES[word]
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65535
    accent_hue = (hue + 0.42 + digest[2] / 255 * 0.2) % 1.0
    background = _hex(colorsys.hls_to_rgb(hue, 0.09, 0.5))
    foreground = _hex(colorsys.hls_to_rgb(hue, 0.94, 0.35))
    accent = _hex(colorsys.hls_to_rgb(accent_hue, 0.6, 0.9))
    return background, foreground, accent


def _rgb(color: str) -> tuple[int, int, int]:
    value = int(color.lstrip("#"), 16)
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


def _mix(a: str, b: str, t: float) -> tuple[int, int, int]:
    x, y = _rgb(a), _rgb(b)
    r, g, bl = (round(x[i] + (y[i] - x[i]) * t) for i in range(3))
    return r, g, bl


@lru_cache(maxsize=32)
def _font(size: int) -> Font:
    for path in _FONT_FILES:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _text_width(draw: ImageDraw.ImageDraw, text: str, font: Font) -> float:
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    return right - left


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and _text_width(draw, candidate, font) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def _fit_title(draw: ImageDraw.ImageDraw, title: str, width: int) -> tuple[Font, list[str]]:
    """The largest font that sets the title in two lines, or smaller in three; a floor after."""
    for size in (112, 100, 90, 80, 72, 64, 56, 50, 44):
        font = _font(size)
        lines = _wrap(draw, title, font, width)
        max_lines = 2 if size > 72 else 3
        if len(lines) <= max_lines and all(_text_width(draw, ln, font) <= width for ln in lines):
            return font, lines
    font = _font(44)
    lines = _wrap(draw, title, font, width)[:3]
    return font, [_ellipsize(draw, line, font, width) for line in lines]


def _ellipsize(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> str:
    if _text_width(draw, text, font) <= width:
        return text
    while text and _text_width(draw, text + "…", font) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def _background(palette: Palette, rng: random.Random) -> Image.Image:
    background, foreground, accent = palette
    # Everything here is smooth: build it at a sixth of the size and scale it up once.
    small = (WIDTH // 6, HEIGHT // 6)
    start = Image.new("RGB", small, _rgb(background))
    end = Image.new("RGB", small, _mix(background, accent, 0.38))
    # Rotate the 256x256 gradient, then keep only its middle, which the rotation leaves whole.
    mask = Image.linear_gradient("L").rotate(rng.uniform(0, 360), Image.Resampling.BILINEAR)
    mask = mask.crop((38, 38, 218, 218)).resize(small, Image.Resampling.BILINEAR)
    base = Image.composite(end, start, mask).convert("RGBA")

    # Soft glows, drawn small and blurred there so that the blur stays cheap.
    glow = Image.new("RGBA", small, (0, 0, 0, 0))
    glow_draw = ImageDraw.Draw(glow)
    for _ in range(3):
        x, y = rng.uniform(0, WIDTH / 6), rng.uniform(0, HEIGHT / 6)
        r = rng.uniform(18, 45)
        color = _mix(accent, foreground, rng.uniform(0, 0.4))
        glow_draw.ellipse((x - r, y - r, x + r, y + r), fill=(*color, rng.randint(70, 130)))
    base.alpha_composite(glow.filter(ImageFilter.GaussianBlur(10)))
    return base.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)


def _shapes(palette: Palette, rng: random.Random) -> Image.Image:
    _, foreground, accent = palette
    layer = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    style = rng.randrange(3)
    for _ in range(rng.randint(12, 20)):
        color = _mix(accent, foreground, rng.choice((0.0, 0.0, 0.3, 0.8)))
        alpha = rng.randint(40, 120)
        x, y = rng.uniform(-60, WIDTH + 60), rng.uniform(-60, HEIGHT + 60)
        size = rng.uniform(18, 120)
        kind = rng.choice(("circle", "ring", "square", "triangle", "pixels"))
        box = (x - size, y - size, x + size, y + size)
        if kind == "circle":
            draw.ellipse(box, fill=(*color, alpha))
        elif kind == "ring":
            draw.ellipse(box, outline=(*color, alpha + 40), width=max(4, int(size / 6)))
        elif kind == "square":
            draw.rounded_rectangle(box, radius=size / (3 if style else 6), fill=(*color, alpha))
        elif kind == "triangle":
            angle = rng.uniform(0, 6.283)
            draw.regular_polygon((x, y, size), 3, rotation=angle * 57.3, fill=(*color, alpha))
        else:
            cell = max(8, int(size / 4))
            for i in range(4):
                for j in range(4):
                    if rng.random() < 0.55:
                        px, py = x + i * (cell + 3), y + j * (cell + 3)
                        draw.rectangle((px, py, px + cell, py + cell), fill=(*color, alpha))
    return layer


def render_cover(title: str, subtitle: str, seed: str, palette: Palette | None = None) -> bytes:
    """A PNG title card (1200x630) for a game: seed-driven shapes, the title large and centred."""
    palette = palette or palette_for("", seed)
    background, foreground, accent = palette
    rng = random.Random(hashlib.sha256(seed.encode("utf-8")).hexdigest())

    image = _background(palette, rng)
    image.alpha_composite(_shapes(palette, rng))

    title = " ".join(title.split()) or "Untitled game"
    subtitle = " ".join(subtitle.split())
    draw = ImageDraw.Draw(image)
    title_font, lines = _fit_title(draw, title, 1000)
    line_height = (
        int(title_font.size * 1.12) if isinstance(title_font, ImageFont.FreeTypeFont) else 60
    )
    sub_font = _font(30)
    sub_lines = [
        _ellipsize(draw, line, sub_font, 960) for line in _wrap(draw, subtitle, sub_font, 960)
    ]
    if len(sub_lines) > 2:
        sub_lines = [sub_lines[0], _ellipsize(draw, sub_lines[1] + " …", sub_font, 960)]
    block = line_height * len(lines) + (24 + 40 * len(sub_lines) if sub_lines else 0)

    # A translucent panel behind the text keeps it readable over any shapes.
    top = (HEIGHT - block) // 2 - 10
    box = (60, max(0, top - 36), WIDTH - 60, min(HEIGHT, top + block + 37))
    # Only the panel's own rectangle is composited: a full-size layer costs three times more.
    panel = Image.new("RGBA", (box[2] - box[0], box[3] - box[1]), (0, 0, 0, 0))
    ImageDraw.Draw(panel).rounded_rectangle(
        (0, top - 36 - box[1], panel.width - 1, top + block + 36 - box[1]),
        radius=36,
        fill=(*_rgb(background), 175),
    )
    image.alpha_composite(panel, dest=(box[0], box[1]))

    draw = ImageDraw.Draw(image)
    y = top
    light = sum(_rgb(background)) > 3 * 150
    shadow = (
        (*_mix(background, foreground, 0.18), 255)
        if light
        else (*_mix(background, "#000000", 0.5), 200)
    )
    for line in lines:
        x = (WIDTH - _text_width(draw, line, title_font)) / 2
        draw.text((x + 3, y + 4), line, font=title_font, fill=shadow)
        draw.text((x, y), line, font=title_font, fill=_rgb(foreground))
        y += line_height
    if sub_lines:
        y += 24
        for line in sub_lines:
            x = (WIDTH - _text_width(draw, line, sub_font)) / 2
            draw.text((x, y), line, font=sub_font, fill=(*_mix(foreground, background, 0.25), 255))
            y += 40

    # The PaletAI mark: three palette dots and the name, bottom left.
    mark_font = _font(28)
    for i, color in enumerate((accent, foreground, _rgb_hex(_mix(accent, background, 0.5)))):
        cx = 78 + i * 26
        draw.ellipse((cx - 9, HEIGHT - 58, cx + 9, HEIGHT - 40), fill=_rgb(color))
    draw.text((160, HEIGHT - 66), "PaletAI", font=mark_font, fill=_rgb(foreground))

    return _png(image)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return out.getvalue()


def render_screenshot_cover(screenshot: bytes, title: str, palette: Palette) -> bytes:
    """A PNG cover (1200x630) from a screenshot of the running game, with its title below."""
    background, foreground, accent = palette
    with Image.open(io.BytesIO(screenshot)) as shot:
        image = shot.convert("RGB").resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)
    image = image.convert("RGBA")
    # A band that fades in from the bottom keeps the title readable over any game.
    band_height = 190
    band = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    fade = Image.linear_gradient("L").resize((WIDTH, band_height)).point(lambda v: v * 215 // 255)
    colour = Image.new("RGBA", (WIDTH, band_height), (*_rgb(background), 255))
    colour.putalpha(fade)
    band.paste(colour, (0, HEIGHT - band_height))
    image.alpha_composite(band)

    draw = ImageDraw.Draw(image)
    title = " ".join(title.split()) or "Untitled game"
    font = _font(64)
    line = _ellipsize(draw, title, font, WIDTH - 340)
    draw.text((62, HEIGHT - 104), line, font=font, fill=(*_mix(background, "#000000", 0.5), 200))
    draw.text((60, HEIGHT - 108), line, font=font, fill=_rgb(foreground))
    mark_font = _font(28)
    for i, color in enumerate((accent, foreground, _rgb_hex(_mix(accent, background, 0.5)))):
        cx = WIDTH - 220 + i * 26
        draw.ellipse((cx - 9, HEIGHT - 58, cx + 9, HEIGHT - 40), fill=_rgb(color))
    draw.text((WIDTH - 138, HEIGHT - 66), "PaletAI", font=mark_font, fill=_rgb(foreground))
    return _png(image)


class CoverRenderer:
    """Renders covers in a small process pool (started on first use): the Pillow work would
    otherwise hold the event loop's GIL for a hundred milliseconds per game. A broken pool (a
    killed child) is replaced, and that cover is rendered in a thread instead."""

    def __init__(self, processes: int = 2) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: forking a process that runs an event loop and driver threads is unsafe.
            self._pool = ProcessPoolExecutor(
                self.processes, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    async def _run(self, func: Callable[[], bytes]) -> bytes:
        if self.processes <= 0:
            return await anyio.to_thread.run_sync(func)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), func)
        except BrokenProcessPool:
            log.warning("the cover process pool broke; starting a new one", exc_info=True)
            self.close()
            return await anyio.to_thread.run_sync(func)

    def warm(self) -> None:
        """Start the pool's processes now, so that the first covers do not wait for them."""
        if self.processes > 0:
            for _ in range(self.processes):
                self._executor().submit(_ready)

    async def card(self, title: str, subtitle: str, seed: str, palette: Palette) -> bytes:
        return await self._run(partial(render_cover, title, subtitle, seed, palette))

    async def screenshot(self, screenshot: bytes, title: str, palette: Palette) -> bytes:
        return await self._run(partial(render_screenshot_cover, screenshot, title, palette))

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _ready() -> bool:
    return True


def _rgb_hex(rgb: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{c:02x}" for c in rgb)
