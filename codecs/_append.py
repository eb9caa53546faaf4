"""Appending rows to an existing table HDU."""


def append_table(path, data, *, ext=1) -> None:
    raise NotImplementedError
