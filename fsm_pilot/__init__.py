"""fsm-pilot: a PanDA-compatible pilot written as one declared state machine."""

__version__ = "0.1.0"
