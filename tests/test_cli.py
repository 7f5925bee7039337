"""The `paletai` command's own glue: help that reads whole where an operator reads it."""

from __future__ import annotations

import subprocess
import sys

from tests.process_helpers import clean_env


def _help(*args: str) -> str:
    # A real process with stdout on a pipe: what `paletai ... --help | less` and CI logs see.
    done = subprocess.run(
        [sys.executable, "-m", "paletai", *args, "--help"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=True,
    )
    return done.stdout


def test_help_off_a_terminal_is_not_cut_at_80_columns() -> None:
    text = _help("storage", "copy")
    assert "PALETAI_COPY_FROM]" in text
    assert "…" not in text


def test_flags_show_no_value_type() -> None:
    text = _help("storage", "copy")
    line = next(ln for ln in text.splitlines() if "--rewrite-urls" in ln)
    assert "<bool>" not in text
    assert "point games.image_url" in line
    # Options that take a value still say which kind.
    assert "<int range>" in text
