"""The one exception type that means "the user's input is wrong"."""


class MechanismError(Exception):
    """Bad input or an impossible request, reported to the user as one line (exit code 2).

    Raised for missing or malformed data folders, out-of-range hyper-parameters, unreadable or
    foreign checkpoints, unavailable devices and unwritable outputs. Programming errors are
    never wrapped in it.
    """
