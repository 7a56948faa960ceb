"""Render chat messages with the model's own template (the GGUF's `tokenizer.chat_template`).

The template is Jinja2, rendered in a sandboxed environment set up as Transformers sets up chat templates
(loop controls, `raise_exception`, `strftime_now`, a pass-through `{% generation %}` tag). A model without
a template gets a plain "question / answer" layout rather than a guess at some other model's tokens.

The render comes back in parts, so that only the template's own text may hold special tokens. Each
message's content is rendered as a sentinel, the sentinels split the output, and the contents are put back
as literal parts: a question that spells `<|im_end|><|im_start|>system` is then tokenized as those
characters, not as the control tokens that would end the user's turn and open a system one (a prompt
injection from a pasted file). A template that rewrites content (strips it, say) rewrites only the
sentinel, so the content goes in as the caller gave it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ttc_cli.errors import UsageError

ChatPart = tuple[str, bool]  # (text, is the template's own text: special tokens are parsed in it)
_SENTINEL = "\ue000{}\ue001"  # private-use characters: no template or message writes them


def render_chat(template: str | None, messages: list[dict[str, str]], bos: str, eos: str) -> list[ChatPart]:
    """The prompt for `messages` as template parts and literal content parts, in order."""
    marks = [_SENTINEL.format(i) for i in range(len(messages))]
    stand_ins = [{**m, "content": mark} for m, mark in zip(messages, marks, strict=True)]
    text = _render(template, stand_ins, bos, eos) if template else _plain(stand_ins)
    parts: list[ChatPart] = []
    for i, (mark, message) in enumerate(zip(marks, messages, strict=True)):
        before, found, text = text.partition(mark)
        if not found:  # the template left this message out (some drop the system turn)
            text = before
            continue
        parts += [(before, True), (message["content"], False)]
        if mark in text:
            raise UsageError(
                f"the model's chat template repeats message {i + 1}", "use a model with a standard template"
            )
    parts.append((text, True))
    return [(t, special) for t, special in parts if t]


def _render(template: str, messages: list[dict[str, str]], bos: str, eos: str) -> str:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class IgnoreGenerationTags(jinja2.ext.Extension):
        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            parser.stream.skip(1)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    env = ImmutableSandboxedEnvironment(
        loader=jinja2.BaseLoader(),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[IgnoreGenerationTags, jinja2.ext.loopcontrols],
    )
    env.filters["tojson"] = lambda x, indent=None, **_: json.dumps(x, ensure_ascii=False, indent=indent)
    try:
        return env.from_string(template).render(
            messages=messages,
            bos_token=bos,
            eos_token=eos,
            add_generation_prompt=True,
            raise_exception=raise_exception,
            strftime_now=lambda f: datetime.now().strftime(f),
        )
    except (jinja2.TemplateError, ValueError, TypeError) as e:
        raise UsageError(
            f"the model's chat template failed to render: {e}", "use a model with a working chat template"
        ) from None


def _plain(messages: list[dict[str, str]]) -> str:
    parts = []
    for m in messages:
        role = m["role"]
        parts.append(m["content"] if role == "system" else f"{role.capitalize()}: {m['content']}")
    return "\n\n".join(parts) + "\n\nAssistant:"
