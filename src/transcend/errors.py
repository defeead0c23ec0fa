"""User-facing errors: one clear sentence, exit status 2."""


class TranscendError(Exception):
    """Bad input (config, file, checkpoint): the message names what is wrong and what is allowed."""

    exit_code = 2
