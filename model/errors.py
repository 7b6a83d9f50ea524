"""The one exception type users see: a clear, one-line message and exit code 2."""


class UserError(Exception):
    """Bad input from the user (prompt, model path, option). The CLI prints it as one line."""

    exit_code = 2
