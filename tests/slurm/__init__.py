"""A real single-node Slurm 22.05 for the tests (tests/slurm/cluster.py) and the pilots run under it.

``python -m tests.slurm start DIR`` / ``stop DIR`` runs the same cluster by hand.
"""
