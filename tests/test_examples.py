"""Reading a code question: the function it asks for, the code a candidate may rely on, the examples it
states (doctest and prose forms), and the asserts a model writes. Pure parsing: nothing runs."""

from __future__ import annotations

import ast

import pytest

from ttc_cli.answers.examples import Case, entry_point, extract_examples, parse_asserts, question_code

STUB = '''from typing import List


def add(a: int, b: int) -> int:
    """Add two numbers.
    >>> add(2, 3)
    5
    >>> add(-1, 1)
    0
    """
'''


def pairs(cases: list[Case]) -> list[tuple[str, str | None]]:
    return [(c.call, c.expected) for c in cases]


# --- entry_point and question_code -----------------------------------------------------------------


def test_a_stub_names_its_function_and_is_its_own_context():
    assert entry_point(STUB) == "add"
    assert question_code(STUB) == STUB  # all Python: prepended as it is, the candidate's def replaces it


def test_helpers_before_the_target_are_kept_and_the_stub_is_the_entry():
    question = (
        "def is_palindrome(s: str) -> bool:\n    return s == s[::-1]\n\n\n"
        'def make_palindrome(s: str) -> str:\n    """Shortest palindrome.\n    >>> make_palindrome(\'cat\')\n'
        '    \'catac\'\n    """\n'
    )
    assert entry_point(question) == "make_palindrome"
    assert "return s == s[::-1]" in question_code(question)
    assert pairs(extract_examples(question)) == [("make_palindrome('cat')", "'catac'")]


@pytest.mark.parametrize(
    "question, name",
    [
        ("Write a function `is_prime(n)` that returns True when n is prime.", "is_prime"),
        ("write a python function called foo that doubles a number", "foo"),
        ("Write a function named `count_vowels` that counts vowels.", "count_vowels"),
        ("def foo(x) that squares x", "foo"),
        ("Implement `rotate(xs, k)`, which rotates a list.", "rotate"),
        ("What is the capital of France?", None),
        ("Write a function that sorts a list using `sorted(xs)`.", None),  # a builtin is not the answer
    ],
)
def test_prose_names_the_function(question, name):
    assert entry_point(question) == name


def test_fenced_code_keeps_definitions_but_not_usage_lines():
    question = (
        "Complete this:\n```python\nimport math\n\nLIMIT = 10\n\ndef area(r):\n    '''Circle area.'''\n"
        "    raise NotImplementedError\n\nprint(area(2))\n```\nThanks!"
    )
    code = question_code(question)
    assert entry_point(question) == "area"
    assert "import math" in code and "LIMIT = 10" in code and "def area" in code
    assert "print(area(2))" not in code  # would call the stub before the candidate replaces it
    ast.parse(code)


def test_unfenced_code_in_prose_is_found_up_to_where_prose_resumes():
    question = "Fix this function:\n\ndef double(x):\n    return x + x + 1\n\nIt should double x."
    assert question_code(question) == "def double(x):\n    return x + x + 1"
    assert entry_point(question) == "double"


@pytest.mark.parametrize(
    "question", ["What is 2 + 2?", "Write a function that reverses a string.", "def broken(:"]
)
def test_prose_or_broken_code_carries_no_code(question):
    assert question_code(question) == ""


# --- doctest forms ---------------------------------------------------------------------------------


def test_doctest_examples_become_cases_with_their_text():
    cases = extract_examples(STUB)
    assert pairs(cases) == [("add(2, 3)", "5"), ("add(-1, 1)", "0")]
    assert {c.source for c in cases} == {"doctest"}
    assert cases[0].text == ">>> add(2, 3)\n    5"


def test_a_doctest_with_no_output_expects_none():
    question = (
        'def longest(xs):\n    """\n    >>> longest([])\n\n    >>> longest(["a"])\n    \'a\'\n    """\n'
    )
    assert pairs(extract_examples(question)) == [("longest([])", "None"), ('longest(["a"])', "'a'")]


def test_a_doctest_traceback_expects_the_exception():
    question = (
        'def root(x):\n    """\n    >>> root(-1)\n    Traceback (most recent call last):\n      ...\n'
        '    math.DomainError: negative\n    >>> root(4)\n    2.0\n    """\n'
    )
    cases = extract_examples(question)
    assert [(c.call, c.expected, c.raises) for c in cases] == [
        ("root(-1)", None, "DomainError"),
        ("root(4)", "2.0", None),
    ]


def test_multi_line_sources_and_outputs():
    question = (
        'def grid(n):\n    """\n    >>> grid([1,\n    ...       2])\n    [[1],\n     [2]]\n'
        '    >>> grid([])\n    []\n    """\n'
    )
    assert pairs(extract_examples(question)) == [("grid([1,\n      2])", "[[1],\n [2]]"), ("grid([])", "[]")]


def test_sloppy_doctest_equalities_and_wrapped_calls():
    question = (
        'def f(x):\n    """\n    >>> f(1) == 2\n    >>> f(2) == 4\n    True\n'
        "    >>> round(f(0.5), 2)  # a float\n"
        '    1.0\n    """\n'
    )
    assert pairs(extract_examples(question)) == [("f(1)", "2"), ("f(2)", "4"), ("round(f(0.5), 2)", "1.0")]


def test_doctests_that_need_earlier_lines_or_call_something_else_are_skipped():
    question = (
        'def f(x):\n    """\n    >>> xs = [1, 2]\n    >>> f(xs)\n    3\n    >>> other(2)\n    4\n'
        '    >>> f(3) [0, 1]\n    >>> f(\n    >>> f(5)\n    5\n    """\n'
    )
    assert pairs(extract_examples(question)) == [("f(5)", "5")]


def test_printed_doctest_output_is_kept_verbatim():
    question = 'def show(x):\n    """\n    >>> show(3)\n    value: 3\n    """\n'
    assert pairs(extract_examples(question)) == [("show(3)", "value: 3")]


# --- prose forms -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, expected",
    [
        ("f([1, 2]) == 3", "3"),
        ("f([1, 2]) -> 3", "3"),
        ("f([1, 2]) => 3", "3"),
        ("f([1, 2]) ==> 3", "3"),
        ("f([1, 2]) ➞ 3", "3"),
        ("f([1, 2]) returns 3.", "3"),
        ("f([1, 2]) should return 3", "3"),
        ("* f([1, 2]) = 3", "3"),
        ("for f([1, 2]) == 3  # because 1 + 2", "3"),
        ("f([1, 2]) => true", "True"),
        ("f([1, 2]) ➞ 0.5", "0.5"),
        ("f([1, 2]) == (None, 1)", "(None, 1)"),
        ('f([1, 2]) ==> ("Venus")', "('Venus',)"),  # prose writes a tuple of one without the comma
        ("f([1, 2]) == {'a': -1}", "{'a': -1}"),
    ],
)
def test_prose_arrow_forms(line, expected):
    question = f"def f(xs):\n    '''Sum.\n\n    Examples:\n    {line}\n    '''\n"
    assert pairs(extract_examples(question)) == [("f([1, 2])", expected)]


def test_several_examples_on_one_line():
    question = "Write `is_prime(n)`. is_prime(7) == True and is_prime(8) -> False, is_prime(9) returns False."
    cases = extract_examples(question)
    assert pairs(cases) == [("is_prime(7)", "True"), ("is_prime(8)", "False"), ("is_prime(9)", "False")]
    assert [c.text for c in cases] == [
        "is_prime(7) == True",
        "is_prime(8) -> False",
        "is_prime(9) returns False",
    ]


@pytest.mark.parametrize(
    "line",
    [
        "f(n) == n * 2",  # arguments are not literals: a definition, not an example
        "f(x) returns a list of numbers",
        "f(2) == 2 + 2",  # the expected value is a computation
        'f(["a"]) == ""a"',  # malformed
        "f([1, 2) == 3",
        "f(1) ==",
    ],
)
def test_malformed_or_symbolic_prose_is_skipped(line):
    assert extract_examples(f"def f(xs):\n    '''\n    {line}\n    '''\n") == []


def test_a_recurrence_makes_its_values_unreliable_as_examples():
    # HumanEval's tri: tri(n) names sequence values, while the function returns a list of them.
    question = (
        "def tri(n):\n    '''\n    tri(1) = 3\n    tri(n) = tri(n - 1) + tri(n - 2)\n"
        "    tri(3) = [1, 3, 2, 8]\n    '''\n"
    )
    assert extract_examples(question) == []


def test_for_x_the_output_should_be():
    question = (
        "def solve(s, c):\n    '''\n    For s = \"abcde\", c = \"ae\", the result should be ('bcd', False)\n"
        "    For c = \"b\", s = \"abc\" the output should be ('ac', False).\n    '''\n"
    )
    assert pairs(extract_examples(question)) == [
        ("solve('abcde', 'ae')", "('bcd', False)"),
        ("solve('abc', 'b')", "('ac', False)"),
    ]


def test_a_sentence_after_the_arguments_is_not_one_of_them():
    question = (
        'def solve(N):\n    """\n    For N = 1000, the sum of digits will be 1 the output should be "1".\n'
        '    """\n'
    )
    assert pairs(extract_examples(question)) == [("solve(1000)", "'1'")]


def test_input_output_pairs():
    question = (
        "def maximum(arr, k):\n    '''\n    Example 1:\n        Input: arr = [-3, -4, 5], k = 3\n"
        "        Output: [-4, -3, 5]\n\n    Example 2:\n"
        "        Input: [4, -4, 4], 2\n        Output: [4, 4]\n"
        "        Explanation: the two largest.\n    '''\n"
    )
    assert pairs(extract_examples(question)) == [
        ("maximum([-3, -4, 5], 3)", "[-4, -3, 5]"),
        ("maximum([4, -4, 4], 2)", "[4, 4]"),
    ]


def test_input_output_in_prose_question_uses_the_named_function():
    question = 'Write a function longest_word(sentence).\nInput: sentence = "This is a test"\nOutput: "test"'
    assert pairs(extract_examples(question)) == [("longest_word('This is a test')", "'test'")]


def test_examples_are_deduplicated_across_forms():
    # (A blank line ends a doctest's output, as in doctest itself.)
    question = "def f(x):\n    '''\n    >>> f(2)\n    4\n\n    f(2) == 4\n    f(2)  ->  4\n    '''\n"
    assert pairs(extract_examples(question)) == [("f(2)", "4")]


def test_only_calls_of_the_entry_count_unless_none_is_known():
    question = "Helpers: g(1) == 2. h(2) -> 3."
    assert pairs(extract_examples(question, entry="g")) == [("g(1)", "2")]
    assert pairs(extract_examples(question)) == [("g(1)", "2"), ("h(2)", "3")]


@pytest.mark.parametrize("question", ["", "What is 2 + 2?", STUB.replace(">>>", "")])
def test_no_examples(question):
    assert extract_examples(question) == []


def test_expected_values_always_parse_or_are_doctest_output():
    question = STUB + "\nAlso add(1, 1) -> 2 and add(0.1, 0.2) == 0.3\n"
    for case in extract_examples(question):
        assert case.expected is not None
        if case.source == "prose":
            ast.parse(case.expected, mode="eval")
        ast.parse(case.call, mode="eval")


# --- asserts a model wrote -------------------------------------------------------------------------


def test_parse_asserts_forms():
    text = """Here are tests:
```python
import math
import pytest

def test_add():
    assert add(1, 2) == 3
    assert 3 == add(2, 1)
    assert add(0.1, 0.2) == pytest.approx(0.3)
    assert math.isclose(add(1.5, 1), 2.5)
    assert abs(add(1, 1.5) - 2.5) < 1e-9
    assert add(True, False) is True
    assert not add(0, 0)
    assert add(1, 1)
    assert add([1,
                2], [3]) == [1, 2, 3]
    assert sorted(add([2], [1])) == [1, 2]
    assert add(1, 2) == 3, "should add"
```
assert add(5, 5) == 10
"""
    assert pairs(parse_asserts(text, "add")) == [
        ("add(1, 2)", "3"),
        ("add(2, 1)", "3"),
        ("add(0.1, 0.2)", "0.3"),
        ("add(1.5, 1)", "2.5"),
        ("add(1, 1.5)", "2.5"),
        ("add(True, False)", "True"),
        ("add(0, 0)", "False"),
        ("add(1, 1)", "True"),
        ("add([1, 2], [3])", "[1, 2, 3]"),
        ("sorted(add([2], [1]))", "[1, 2]"),
        ("add(5, 5)", "10"),
    ]
    assert {c.source for c in parse_asserts(text, "add")} == {"generated"}


@pytest.mark.parametrize(
    "line",
    [
        "assert other(1) == 2",  # not the entry
        "assert add(x, 1) == 2",  # a name the test set up elsewhere
        "assert add(1, 2) == compute()",  # expected side calls something
        "assert add(1, 2) != 4",
        "assert add(1 2) == 3",  # does not parse
        "assert add(1, 2) == add(2, 1)",  # no expected value
        "assert isinstance(add(1, 2), int) is None and 1",
    ],
)
def test_asserts_that_cannot_be_cases_are_skipped(line):
    assert parse_asserts(line, "add") == []


def test_a_bare_assert_with_a_message_is_not_a_test():
    from ttc_cli.answers.examples import parse_asserts

    cases = parse_asserts("assert f(1, 2), False\nassert f(3) == 4, 'why'", "f")
    assert [(c.call, c.expected) for c in cases] == [("f(3)", "4")]
