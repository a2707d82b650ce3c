"""Benchmarks: commands that print a table (``make bench``); never part of the test suite's verdict."""
