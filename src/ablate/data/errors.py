"""The one exception type of the data layer, so callers can tell bad data from bugs."""


class DataError(ValueError):
    """A data set that cannot be used as given; the message names the file and, where relevant, the entry."""
