"""Events to JSON and back, exactly: what the run log stores and `ttc replay` re-renders.

Every event and the records inside them are frozen dataclasses of plain values and tuples, so one generic
rule serves them all: a dataclass becomes an object tagged with its class name, a tuple a list; decoding
reverses it (lists become tuples again, which is all the event types hold). A class this module does not
know (a log written by a newer ttc) decodes to None and is skipped, never guessed at.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ttc_cli import events

TAG = "_"
TYPES: dict[str, type] = {
    name: cls for name, cls in vars(events).items() if isinstance(cls, type) and dataclasses.is_dataclass(cls)
}


def encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {TAG: type(value).__name__}
        for f in dataclasses.fields(value):
            out[f.name] = encode(getattr(value, f.name))
        return out
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    return value


# Fields renamed since logs were first written: class -> {old name: new name}, so old logs still replay.
RENAMED: dict[str, dict[str, str]] = {
    # "confidence" is the answer's alone (result schema 2); a trace's is DeepConf's trace confidence.
    "Candidate": {"confidence": "trace_confidence"},
    "TraceCancelled": {"confidence": "trace_confidence"},
}


def decode(value: Any) -> Any:
    if isinstance(value, dict) and TAG in value:
        cls = TYPES.get(value[TAG])
        if cls is None:
            return None
        names = {f.name for f in dataclasses.fields(cls)}
        renamed = RENAMED.get(value[TAG], {})
        items = ((renamed.get(k, k), v) for k, v in value.items())
        return cls(**{k: decode(v) for k, v in items if k in names})
    if isinstance(value, list):
        return tuple(decode(v) for v in value)
    return value
