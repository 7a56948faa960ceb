"""ttc: spend more inference on a hard question, within a token budget you choose."""

__version__ = "0.1.0"
