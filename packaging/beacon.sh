#!/bin/sh
# Installed as /usr/bin/beacon: beacon runs in its own virtualenv, Debian's python3.11 with
# beacon and its dependencies (/usr/lib/beacon).
exec /usr/lib/beacon/bin/python -I -m beacon "$@"
