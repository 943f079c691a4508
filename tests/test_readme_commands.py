"""Every `tpsearch` command the README and its pages under docs/ show in a code block is one the parser accepts:
a flag renamed or a command removed fails here, not in a newcomer's terminal."""
from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from tpsearch.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _commands(path: Path) -> list[tuple[int, str]]:
    """(line, command) for each `tpsearch ...` line of the document's fenced code blocks, continuations joined."""
    found, fenced, pending, start = [], False, "", 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced, pending = not fenced, ""
            continue
        if not fenced:
            continue
        text = (pending + " " + line.strip()) if pending else line.strip()
        start = start if pending else number
        if text.endswith("\\"):
            pending = text[:-1]
            continue
        pending = ""
        if "──" in text or " ... " in text:  # a drawing, or a command written with an elision
            continue
        for part in re.split(r"\s&&\s", re.sub(r"^\$\s+", "", text)):
            part = re.sub(r"^(\.venv/bin/)?tpsearch ", "tpsearch ", part.strip())
            if part.startswith("tpsearch "):
                found.append((start, part))
    return found


COMMANDS = [(f"{path.relative_to(ROOT)}:{line}", command) for path in DOCUMENTS for line, command in _commands(path)]


def test_the_documents_show_commands():
    assert len(COMMANDS) > 10 and any(where.startswith("docs/") for where, _ in COMMANDS)


@pytest.mark.parametrize("where, command", COMMANDS, ids=[where for where, _ in COMMANDS])
def test_every_command_shown_is_one_the_parser_accepts(where, command):
    words = shlex.split(command, comments=True)
    # A shell's own syntax after the command (a pipe, a redirection, `&&`) is not the command's.
    for i, word in enumerate(words):
        if word in ("|", "||", "&&", ";", ">", ">>", "2>", "&") or word.startswith((">", "2>")):
            words = words[:i]
            break
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(words[1:])
        except SystemExit as e:
            if e.code not in (0, None):  # --help and --version exit 0
                pytest.fail(f"{where}: `{command}` is refused: {err.getvalue().strip()}")
