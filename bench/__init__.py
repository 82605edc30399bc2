"""Benchmarks (not tests): each prints its numbers beside a floor measured in the same run."""
