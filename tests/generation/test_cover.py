"""Cover images: PNG title cards, 1200x630, different per game."""

from __future__ import annotations

import io

from PIL import Image, ImageChops, ImageStat

from paletai.generation.cover import palette_for, render_cover


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_cover_is_png_of_the_right_size() -> None:
    data = render_cover("Neon Snake", "Eat and grow.", "game-1", palette_for("neon", "game-1"))
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = decode(data)
    assert image.format == "PNG"
    assert image.size == (1200, 630)


def test_cover_is_not_blank() -> None:
    image = decode(render_cover("Pong", "Classic pong.", "game-2")).convert("L")
    assert ImageStat.Stat(image).stddev[0] > 10
    assert len(image.getcolors(maxcolors=1 << 16) or []) > 50


def test_covers_differ_by_seed_and_title() -> None:
    base = decode(render_cover("Snake", "Eat.", "seed-a")).convert("RGB")
    other_seed = decode(render_cover("Snake", "Eat.", "seed-b")).convert("RGB")
    other_title = decode(render_cover("Breakout", "Eat.", "seed-a")).convert("RGB")
    for other in (other_seed, other_title):
        diff = ImageChops.difference(base, other).convert("L")
        assert ImageStat.Stat(diff).mean[0] > 1


def test_cover_is_deterministic() -> None:
    assert render_cover("Snake", "Eat.", "seed-a") == render_cover("Snake", "Eat.", "seed-a")


def test_cover_uses_the_palette() -> None:
    red = decode(render_cover("T", "", "s", ("#200000", "#ffffff", "#ff2020"))).convert("RGB")
    blue = decode(render_cover("T", "", "s", ("#000020", "#ffffff", "#2020ff"))).convert("RGB")
    r_mean, _, b_mean = ImageStat.Stat(red).mean
    assert r_mean > b_mean
    r_mean, _, b_mean = ImageStat.Stat(blue).mean
    assert b_mean > r_mean


def test_cover_copes_with_long_and_odd_text() -> None:
    long_title = "An extraordinarily long title " * 8
    for title, subtitle in [(long_title, long_title), ("", ""), ("</script>ünïcødé 🎮", "x")]:
        assert decode(render_cover(title, subtitle, "seed")).size == (1200, 630)


async def test_the_process_pool_renders_the_same_card_and_survives_a_killed_child() -> None:
    import os
    import signal

    from paletai.generation.cover import CoverRenderer

    palette = palette_for("a neon snake game", "g-pool")
    in_thread = await CoverRenderer(0).card("Neon Snake", "eat", "g-pool", palette)
    pool = CoverRenderer(1)
    try:
        assert await pool.card("Neon Snake", "eat", "g-pool", palette) == in_thread
        # A child killed under it: that cover is made in a thread, then a new pool takes over.
        assert pool._pool is not None
        for pid in list(pool._pool._processes):  # noqa: SLF001 - the test kills the child
            os.kill(pid, signal.SIGKILL)
        assert await pool.card("Neon Snake", "eat", "g-pool", palette) == in_thread
        assert await pool.card("Neon Snake", "eat", "g-pool", palette) == in_thread
    finally:
        pool.close()
