"""The one error both serving backends raise, in a module of its own so neither backend imports the other."""


class ServingUnavailable(RuntimeError):
    """The served database does not exist yet, or cannot be read."""
