"""Decoding engines. Only `ttc_cli.engine.llama` imports llama_cpp, and only when a model is loaded."""

from ttc_cli.engine.base import Engine
from ttc_cli.engine.decoder import Decoder
from ttc_cli.engine.sequence import SamplingParams, Sequence
from ttc_cli.errors import EngineError

__all__ = ["Decoder", "Engine", "EngineError", "SamplingParams", "Sequence"]
