"""Decoding engines. Only `ttc_cli.engine.llama` imports llama_cpp, and only when a model is loaded."""

from ttc_cli.engine.base import Decoder, Engine, EngineError, SamplingParams, Sequence

__all__ = ["Decoder", "Engine", "EngineError", "SamplingParams", "Sequence"]
