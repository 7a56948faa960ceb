"""The prompts (prompts/*.yaml, layered as `yaml_layers.py` says): a task's prompt (math, general,
program, code, or the user's own), the verifiers' and strategies' own prompts (judge, refine, tests), and
which task a question looks like (`--task auto`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ttc_cli.errors import UsageError
from ttc_cli.yaml_layers import invalid, keys_text, load_layers, names, require


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    system: str
    template: str
    prefill: str = ""  # the start of the model's reply, e.g. "<think>\n" to open a thinking block
    step_delimiter: str = "\n\n"  # where a reasoning step ends, for the tree searches
    grammar: str = ""  # GBNF every reply must follow (each step, in a tree search); "" for free text
    # text: the answer a reply states; program: what the reply's program prints; code: the reply's code,
    # tested against the question's examples and the model's own tests
    answer: str = "text"
    # appended to a running sample's text to ask what it would answer now (answer probes); "" for none
    answer_cue: str = ""

    def messages(self, question: str) -> list[dict[str, str]]:
        user = self.template.replace("{question}", question)
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return msgs + [{"role": "user", "content": user}]


AUX_PROMPTS = ("judge", "refine", "tests")  # prompts of verifiers and strategies, not tasks
ANSWERS = ("text", "program", "code")
HYBRID = "hybrid"  # --task hybrid: the math prompt and the program prompt, in one pool of samples


def task_names() -> list[str]:
    """What --task accepts: every task prompt (built-in and the user's own), hybrid and auto."""
    return [n for n in names("prompts") if n not in AUX_PROMPTS] + [HYBRID, "auto"]


def load_prompt(name: str) -> PromptTemplate:
    if name in AUX_PROMPTS:
        raise UsageError(
            f"'{name}' is not a task prompt",
            "use --task math, general, program, hybrid, code, auto or your own",
        )
    data, where = load_layers("prompts", name)
    unknown = set(data) - {
        "system",
        "template",
        "prefill",
        "step_delimiter",
        "grammar",
        "answer",
        "answer_cue",
    }
    require(not unknown, where, f"unknown key(s) {keys_text(unknown)}")
    template = data.get("template")
    if not isinstance(template, str) or "{question}" not in template:
        raise invalid(where, "'template' must contain {question}")
    system = data.get("system", "")
    require(isinstance(system, str), where, "'system' must be a string")
    prefill = data.get("prefill", "")
    require(isinstance(prefill, str), where, "'prefill' must be a string")
    delimiter = data.get("step_delimiter", "\n\n")
    require(isinstance(delimiter, str) and delimiter != "", where, "'step_delimiter' must be a string")
    grammar = data.get("grammar", "")
    require(isinstance(grammar, str), where, "'grammar' must be a string (GBNF, with a root rule)")
    answer = data.get("answer", "text")
    require(answer in ANSWERS, where, f"'answer' must be one of: {', '.join(ANSWERS)}")
    cue = data.get("answer_cue", "")
    require(isinstance(cue, str), where, "'answer_cue' must be a string")
    return PromptTemplate(
        name,
        system.strip(),
        template,
        prefill=prefill,
        step_delimiter=delimiter,
        grammar=grammar,
        answer=answer,
        answer_cue=cue,
    )


def load_aux_prompt(name: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, str]:
    """A verifier's or strategy's own prompts (judge, refine, tests): each of `keys` a non-empty string,
    each of `optional` a string ("" when left out)."""
    data, where = load_layers("prompts", name)
    unknown = set(data) - set(keys) - set(optional)
    require(not unknown, where, f"unknown key(s) {keys_text(unknown)}")
    for key in keys:
        value = data.get(key)
        require(isinstance(value, str) and bool(value.strip()), where, f"'{key}' must be a non-empty string")
    for key in optional:
        require(isinstance(data.get(key, ""), str), where, f"'{key}' must be a string")
    return {key: str(data[key]) for key in keys} | {key: str(data.get(key, "")) for key in optional}


# A question that asks for a function: a Python signature, a doctest, or prose asking to write one.
_CODE_QUESTION = re.compile(
    r"^\s*def \w+\s*\(|^\s*>>> |\b(?:write|implement|complete|code)\b[^.\n]{0,40}"
    r"\b(?:function|method)\b",
    re.M | re.I,
)


def guess_task(question: str, numbers: str = "math") -> str:
    """'code' when the question asks for a function; else `numbers` when it carries numbers or
    arithmetic, else 'general'. `numbers` is the profile's `execution.auto_task`: math unless the user
    turned on program or hybrid, which run code."""
    if _CODE_QUESTION.search(question):
        return "code"
    has_digit = any(c.isdigit() for c in question)
    return numbers if has_digit else "general"
