"""Partition names, which double as relative file paths (``<catdir>/<name>.cpt``).

GSC scheme: ``fullsky``; bands ``n0000`` .. ``s8230``; large regions ``n0000/z001``;
small regions ``n0000/0001`` (and ``n8230/pole.0`` .. ``pole.4``); deeper boxes append
``.00`` .. ``.15``. HEALPix scheme: ``Norder=7/Dir=0/Npix=123`` (the HATS hive layout).
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["is_safe_name", "safe_names"]

_COMPONENT = re.compile(r"^[A-Za-z0-9_=-][A-Za-z0-9_.=-]*$")
MAX_NAME = 64


def is_safe_name(name: str) -> bool:
    """Whether ``name`` is a safe relative path: ``/``-separated components of letters,
    digits and ``_ . = -``, none empty, none starting with ``.`` (so no ``..``), at most 64
    characters.

    Examples
    --------
    >>> names = ("n0000/0001.05", "Norder=7/Dir=0/Npix=1", "../x", "/etc", "a//b")
    >>> [is_safe_name(n) for n in names]
    [True, True, False, False, False]
    """
    if not isinstance(name, str | np.str_) or not 0 < len(name) <= MAX_NAME:
        return False
    return all(_COMPONENT.match(part) for part in str(name).split("/"))


def safe_names(names: np.ndarray) -> np.ndarray:
    """Vectorised :func:`is_safe_name` over a str array (checks the characters in bulk).

    Examples
    --------
    >>> safe_names(np.array(["n0000/0001", "a/../b"])).tolist()
    [True, False]
    """
    names = np.asarray(names, dtype=str)
    ok = (np.strings.str_len(names) > 0) & (np.strings.str_len(names) <= MAX_NAME)
    ok &= ~np.strings.startswith(names, "/") & ~np.strings.endswith(names, "/")
    ok &= ~np.strings.startswith(names, ".")
    ok &= (np.strings.find(names, "/.") < 0) & (np.strings.find(names, "//") < 0)
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.=-/")
    if names.size == 0:
        return ok
    u = names.view(np.uint32).reshape(names.size, -1)  # UCS-4 code points, 0-padded
    table = np.zeros(max(int(u.max()) + 1, 128), dtype=bool)
    table[0] = True  # padding
    table[[ord(c) for c in allowed]] = True
    ok &= table[u].all(axis=1)
    return ok
