"""Database-wide object ids: (catID, objID) packed into one 64-bit integer."""

from __future__ import annotations

import numpy as np

__all__ = ["object_id", "split_object_id"]


def object_id(cat_id, obj_id) -> np.ndarray:
    """``catID << 32 | objID`` as int64.

    Examples
    --------
    >>> int(object_id(7, 3))
    30064771075
    """
    return (np.asarray(cat_id, np.int64) << 32) | np.asarray(obj_id, np.int64)


def split_object_id(oid) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`object_id`: (catID, objID)."""
    oid = np.asarray(oid, np.int64)
    return oid >> 32, oid & 0xFFFFFFFF
