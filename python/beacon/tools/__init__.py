"""Command-line tools that work on a deployment's stores from outside the server
(`beacon backfill`, `beacon reprocess`)."""
