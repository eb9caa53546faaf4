"""Table schemas of the dvo database: one place defines each table's columns.

Layouts follow the DVO PS1_V6 tables (``shared/reference/dvo-facts.md`` section 1): the same
FITS column names and types, in the same order. Unsigned DVO fields are numpy unsigned types
(written with TZERO by the codecs). Columns we add are listed in :data:`ADDED` with the reason.
"""

from __future__ import annotations

from dvo.schema._tables import (
    ADDED,
    AVERAGE,
    IMAGE,
    LENSING,
    LENSOBJ,
    MEASURE,
    PHOTCODE,
    SECFILT,
    Schema,
    opaque,
)

__all__ = [
    "Schema",
    "opaque",
    "AVERAGE",
    "SECFILT",
    "MEASURE",
    "LENSING",
    "LENSOBJ",
    "IMAGE",
    "PHOTCODE",
    "ADDED",
]
