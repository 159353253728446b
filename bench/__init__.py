"""The benchmark harness: what OneKey adds to an upstream call (see README.md)."""
