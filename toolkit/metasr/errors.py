"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class MetaSRError(Exception):
    """A user-facing error: the message names the problem and the fix in one line."""
