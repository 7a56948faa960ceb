"""Child-process probe: load a model with extra buffer types and decode a few tokens (see host.py)."""

import sys

from ttc_cli.budget import TokenBudget
from ttc_cli.engine.llama import LlamaEngine
from ttc_cli.engine.sequence import SamplingParams


def main(path: str) -> None:
    engine = LlamaEngine(path, extra_bufts=True, n_ctx=256, n_seq_max=2)
    root = engine.prefill(engine.tokenize("The sky is", add_special=True))
    decoder = engine.decoder(TokenBudget(4))
    decoder.add(engine.fork(root), SamplingParams(temperature=0, max_tokens=4))
    for _ in decoder:
        pass


if __name__ == "__main__":
    main(sys.argv[1])
