"""The load benchmark: beacon side by side with nginx and a hand-written Python server.

Run from the repository root with `make bench-load` (or `python -m bench.load.run --help`)."""
