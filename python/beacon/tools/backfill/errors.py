"""The one error the backfill reports: a single line for stderr, exit status 2."""


class BackfillError(Exception):
    """Bad input or a fault; raised before the destination is touched."""
