"""Errors a user can fix (a missing file, a malformed annotation, a bad value), stated
in one line. The tools print them as ``error: ...`` and exit with status 2
(:func:`convdense.launch.run_cli`); any other exception is a bug and keeps its
traceback."""


class UserError(Exception):
    """A problem in the user's input, config or data, stated in one line."""


class DataError(UserError, ValueError):
    """Data that is missing or malformed; the message starts with the file or folder."""


class MissingFileError(UserError, FileNotFoundError):
    """A file the config names (a checkpoint to convert first, say) does not exist."""
