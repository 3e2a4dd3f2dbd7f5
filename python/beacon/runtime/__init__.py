"""The process: start-up, serving, signals, drain and die."""

from beacon.runtime.run import run

__all__ = ["run"]
