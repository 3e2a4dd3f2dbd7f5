"""Command-line tools that work on a deployment's stores from outside the server."""
