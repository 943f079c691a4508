"""Which space rebuilds a checkpoint's model: a checkpoint never makes tpsearch import or run code by itself.

A checkpoint names its space in `space`. A registered name (`resnet_5m`) or an installed one (entry point group
`tpsearch.spaces`) is code the user already runs, and is found by name. A space of the user's own is named in the
file as `FILE.py:CLASS` or `MODULE:CLASS`, and `spaces.get` would run that file or import that module: a
checkpoint that a stranger edited could then run any file beside it (a shared archive holding `best.pt` and a
`.py`) or any module on the path, before a single weight was read. So such a name is refused, before anything is
imported, unless the user names the space themselves: `--space FILE.py:CLASS` on the command line, or
`load_checkpoint(path, space=...)` (a name, a spec or a `Space`). Hugging Face draws the same line with
`trust_remote_code=True`. A study's record of its space is not a checkpoint's: the storage is the user's own, and
`tpsearch export` trusts it.

An export of a space of one's own also records `space_source` ({name, file, class} or {name, module,
class}, the file's absolute path): what the space is called, to check a `--space` against, and where its file was,
to suggest the flag that points at it when the checkpoint is read from another folder. It is never loaded on the
checkpoint's word either.
"""
from __future__ import annotations

from typing import Any, Mapping

from tpsearch import spaces
from tpsearch.exceptions import CheckpointError, UsageError


def checkpoint_space(meta: Mapping[str, Any], where: str, space: str | spaces.Space | None = None
                     ) -> spaces.Space:
    """The space that rebuilds the model `meta` describes; `space` is the one the user named, if any.

    A registered or installed name resolves as always. A space of the user's own resolves only from `space`; a
    `space` whose name is not the one the checkpoint records is refused.
    """
    recorded = meta["space"]
    source = _source(meta) if spaces.is_own(recorded) else None  # a registered name says what it is itself
    expected = source["name"] if source else (None if spaces.is_own(recorded) else recorded)
    if space is not None:
        chosen = space if isinstance(space, spaces.Space) else spaces.get(space)  # the user's own consent
        if expected is not None and chosen.name != expected:
            raise CheckpointError(f"{where} was made with the space {expected!r}, but --space gives the space "
                                  f"{chosen.name!r}")
        return chosen
    if not spaces.is_own(recorded):
        try:
            return spaces.get(recorded)
        except UsageError as e:
            raise CheckpointError(f"{where}: {e}") from None
    spec = _suggestion(recorded, source)
    raise CheckpointError(f"{where} names the space {recorded!r}, code of your own that tpsearch never imports or "
                          f"runs on a checkpoint's word: if you trust it, name it yourself with --space {spec} "
                          f"(in Python: space=...)")


def _source(meta: Mapping[str, Any]) -> dict[str, str] | None:
    """`space_source` when it is well formed (strings only), else None: it is only ever read, never loaded."""
    source = meta.get("space_source")
    if isinstance(source, dict) and all(isinstance(v, str) for v in source.values()) and "name" in source:
        return source
    return None


def _suggestion(recorded: str, source: Mapping[str, str] | None) -> str:
    """The spec to give with --space: the file the export recorded (absolute, so it works from any folder)."""
    from pathlib import Path

    if source and "file" in source and "class" in source:
        if Path(source["file"]).is_file():
            return f"{source['file']}:{source['class']}"
        return (f"FILE.py:{source['class']} (the file of space {source['name']!r} was {source['file']!r}, which is "
                f"not there now)")
    return recorded
