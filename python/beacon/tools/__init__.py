"""Commands that work on a data directory while no server does (`beacon reprocess`)."""
