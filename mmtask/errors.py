"""Errors raised for user mistakes, so the CLI can show them as one line."""


class MmtaskError(Exception):
    """Base class of errors caused by user input (paths, specs, data files)."""


class DataError(MmtaskError):
    """A data file is missing, unreadable or inconsistent.

    Args:
        message: str. What was expected and what was found.
        path: str | None. The file concerned.
        line: int | None. The 1-based line in `path`, where one applies.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")


class SpecError(MmtaskError):
    """A model or training spec has an unknown key or an invalid value."""
