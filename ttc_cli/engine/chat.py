"""Render chat messages with the model's own template (the GGUF's `tokenizer.chat_template`).

The template is Jinja2, rendered by llama-cpp-python's formatter (the same sandbox and extensions as
Transformers). A model without a template gets a plain "question / answer" layout rather than a guess at
some other model's special tokens.
"""

from __future__ import annotations

from ttc_cli.errors import UsageError


def render_chat(template: str | None, messages: list[dict[str, str]], bos: str, eos: str) -> str:
    if not template:
        return _plain(messages)
    from jinja2 import TemplateError
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    try:
        formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        return formatter(messages=messages).prompt  # type: ignore[arg-type]
    except (TemplateError, ValueError) as e:
        raise UsageError(
            f"the model's chat template failed to render: {e}", "use a model with a working chat template"
        ) from None


def _plain(messages: list[dict[str, str]]) -> str:
    parts = []
    for m in messages:
        role = m["role"]
        parts.append(m["content"] if role == "system" else f"{role.capitalize()}: {m['content']}")
    return "\n\n".join(parts) + "\n\nAssistant:"
