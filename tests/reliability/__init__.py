"""The reliability campaign: chaos, signal storms, fuzzing, dispatcher kills, kill scope, secrets.

Small sizes run with every ``pytest``; ``FSM_RELIABILITY_SCALE=full`` (``make reliability``)
runs the full campaign and ``report.py`` writes ``docs/reliability.md`` from its results.
"""
