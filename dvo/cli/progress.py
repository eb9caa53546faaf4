"""A progress bar on a terminal, silence in scripts or with --quiet."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click


@contextmanager
def progress_bar(
    total: int, label: str, *, quiet: bool, show: Callable[[Any], str] | None = None
) -> Iterator[Callable[..., None] | None]:
    """Yield a callback ``(n, item=None)`` advancing a bar by n, or None when no bar should be
    drawn. ``show(item)`` is printed after the bar (e.g. the detections loaded so far)."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    shown = None if show is None else (lambda item: "" if item is None else show(item))
    with click.progressbar(length=total, label=label, file=sys.stderr, item_show_func=shown) as bar:
        yield bar.update
