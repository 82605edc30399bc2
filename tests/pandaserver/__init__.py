"""The pilot against a real panda-server 1.0.4: the stack (PostgreSQL, schema, server) and the cases.

``python -m tests.pandaserver`` (``make panda-server-test``) runs them; ``make test`` does not collect them.
"""
