"""Answer extraction, equivalence and the lexical-medoid fallback, rule by rule."""

from fractions import Fraction

import pytest

from ttc_cli.answers.consistency import most_consistent, similarity
from ttc_cli.answers.extract import (
    Answer,
    answer_key,
    answers_equal,
    extract_answer,
    normalize_number,
    question_choices,
)

ABCD = ("A", "B", "C", "D")


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Which is largest?\n(A) 3\n(B) 5\n(C) 4\n(D) 1", ABCD),
        ("Pick one:\nA) red\nB) blue\nC) green", ("A", "B", "C")),
        ("Pick one:\nA. red\nB. blue", ("A", "B")),
        ("Pick one:\nA: red\nB: blue\nC: green\nD: pink\nE: grey", ("A", "B", "C", "D", "E")),
        ("Which city? (A) Paris (B) Rome (C) Oslo", ("A", "B", "C")),
        ("- (A) yes\n- (B) no", ("A", "B")),
        ("Options: (A) 1 (B) 2 (D) 4", ("A", "B")),  # the run stops at the first missing letter
        ("Only (A) here is not a list.", ()),
        ("(B) and (C) but no A", ()),
        ("Q: What is 2+2?\nA: Let's think.", ()),
        ("A man buys 3 apples. How many?", ()),
        ("Natalia sold clips to 48 friends.", ()),
    ],
)
def test_question_choices(question: str, expected: tuple[str, ...]) -> None:
    assert question_choices(question) == expected


@pytest.mark.parametrize(
    ("response", "text", "key", "kind", "source"),
    [
        # 1. boxed, nested braces and \frac
        (r"So the result is $\boxed{42}$.", "42", "42", "number", "boxed"),
        (r"Thus $\boxed{\frac{1}{2}}$", "0.5", "1/2", "number", "boxed"),
        (r"$\boxed{\dfrac{3}{4}}$", "0.75", "3/4", "number", "boxed"),
        (r"\boxed{\frac{1}{3}}", "1/3", "1/3", "number", "boxed"),
        (r"\fbox{-7}", "-7", "-7", "number", "boxed"),
        (r"\boxed{1,000.0}", "1000", "1000", "number", "boxed"),
        (r"\boxed{45 \text{ dollars}}", "45", "45", "number", "boxed"),
        (r"\boxed{x = 5}", "5", "5", "number", "boxed"),
        (r"\boxed{\text{Paris}}", "Paris", "paris", "text", "boxed"),
        (r"\boxed{x^{2}+1}", "x^{2}+1", "x^{2}+1", "text", "boxed"),
        (r"First \boxed{3}, no wait, \boxed{4}", "4", "4", "number", "boxed"),
        (r"Final: \boxed{5} and an unfinished \boxed{6", "5", "5", "number", "boxed"),
        # 2. GSM8K
        ("She has 3 + 4 = 7 apples.\n#### 7", "7", "7", "number", "gsm8k"),
        ("#### $1,250", "1250", "1250", "number", "gsm8k"),
        ("#### 18 (that is 3 * 6)", "18", "18", "number", "gsm8k"),
        ("#### -3\nThanks for asking about 99 things.", "-3", "-3", "number", "gsm8k"),
        # 3. answer phrases
        ("The answer is 45 dollars.", "45", "45", "number", "answer-is"),
        ("The answer is $1,250.50 per month", "1250.5", "2501/2", "number", "answer-is"),
        ("Final answer: 12", "12", "12", "number", "answer-is"),
        ("My final answer is -2.50.", "-2.5", "-5/2", "number", "answer-is"),
        ("**Answer:** 18", "18", "18", "number", "answer-is"),
        ("The answer is **3/4**.", "0.75", "3/4", "number", "answer-is"),
        ("answer = 9", "9", "9", "number", "answer-is"),
        ("ANSWER: 50%", "50", "50", "number", "answer-is"),
        ("The final answer is:\n\n64", "64", "64", "number", "answer-is"),
        ("The answer is 3. Then I double-checked with 7 more steps.", "3", "3", "number", "answer-is"),
        ("The answer is 10.\nActually, the answer is 12.", "12", "12", "number", "answer-is"),
        ("The answer is Paris.", "Paris", "paris", "text", "answer-is"),
        ("The answer is: The Eiffel Tower!", "The Eiffel Tower", "eiffel tower", "text", "answer-is"),
        # 5. final line
        ("3 + 4 = 7\nSo she has 7 apples left.", "7", "7", "number", "final-line"),
        ("Total: 1,000,000 dollars", "1000000", "1000000", "number", "final-line"),
        ("We get 2 and 3, so 5.\nThat is all.\n", "5", "5", "number", "final-line"),
        ("It costs 12.\nStep 4: done.", "12", "12", "number", "final-line"),
        ("Value is x2 + 9", "9", "9", "number", "final-line"),
        ("so the ratio is 3/4", "0.75", "3/4", "number", "final-line"),
        ("The balance is -15.", "-15", "-15", "number", "final-line"),
    ],
)
def test_extract_answer(response: str, text: str, key: str, kind: str, source: str) -> None:
    assert extract_answer(response) == Answer(text, key, kind, source)


@pytest.mark.parametrize(
    ("response", "letter", "source"),
    [
        ("The answer is (B).", "B", "answer-is"),
        ("The correct answer is B) Paris", "B", "answer-is"),
        ("Answer: C. It is the only prime.", "C", "answer-is"),
        ("The answer is option D", "D", "answer-is"),
        (r"\boxed{B}", "B", "boxed"),
        (r"\boxed{\text{(C)}}", "C", "boxed"),
        ("Comparing them, (A) is too small.\nSo I pick (C).", "C", "choice"),
        ("The best fit is option B", "B", "choice"),
        ("Not (A), so (C).", "C", "choice"),
        ("Both fail, so it must be D)", "D", "choice"),
        ("After checking each one:\n**A**", "A", "choice"),
        ("There are 4 legs, so (B) 4 is right.", "B", "choice"),
    ],
)
def test_extract_choice(response: str, letter: str, source: str) -> None:
    assert extract_answer(response, ABCD) == Answer(letter, f"choice:{letter}", "choice", source)


def test_choice_rules_need_choices() -> None:
    # Without options the same response is read by the number rule instead.
    assert extract_answer("There are 4 legs, so (B) 4 is right.") == Answer("4", "4", "number", "final-line")


def test_letter_outside_the_options_is_not_a_choice() -> None:
    assert extract_answer("So I pick (E).", ABCD) is None
    assert extract_answer("The answer is (E) 12", ABCD) == Answer("12", "12", "number", "answer-is")


@pytest.mark.parametrize(
    "response",
    [
        "",
        "I am not sure how to solve this problem.",
        "Photosynthesis turns light into chemical energy.\nPlants store it as sugar.",
        "Numbers like 7 appear early.\nBut then\nthe text goes on\nwith no more of them.",
        "Let me use x2 and y3 as unknowns.",
        "#### Step one\nwe think hard",
        "The answer is:",
    ],
)
def test_no_answer(response: str) -> None:
    assert extract_answer(response) is None


@pytest.mark.parametrize(
    ("response", "source", "key"),
    [
        (r"The answer is 7. Final: \boxed{8}", "boxed", "8"),
        (r"\boxed{8}. So the answer is 7.", "boxed", "8"),
        ("#### 5\nThe answer is 6.", "gsm8k", "5"),
        ("The answer is 6.\nThen we add 2 to get 8.", "answer-is", "6"),
        ("The answer is (A).\nCheck: (B) 4 fails.", "answer-is", "choice:A"),
        ("Pick (C)\nsince 3 + 4 = 7", "choice", "choice:C"),
    ],
)
def test_priority(response: str, source: str, key: str) -> None:
    answer = extract_answer(response, ABCD)
    assert answer is not None
    assert (answer.source, answer.key) == (source, key)


@pytest.mark.parametrize(
    "response",
    [r"\boxed{\frac{5}{2}}", "The answer is 1,000.0", "#### 0.125", "The answer is (B)", "Answer: New York"],
)
def test_extracted_key_matches_answer_key_of_text(response: str) -> None:
    answer = extract_answer(response, ABCD)
    assert answer is not None
    assert answer_key(answer.text) == answer.key


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        ("1,000", Fraction(1000)),
        ("1000.0", Fraction(1000)),
        ("$45", Fraction(45)),
        ("-$45", Fraction(-45)),
        ("3/4", Fraction(3, 4)),
        ("-2.50", Fraction(-5, 2)),
        ("50%", Fraction(50)),
        ("+7", Fraction(7)),
        ("0.125", Fraction(1, 8)),
        (r"\frac{3}{4}", Fraction(3, 4)),
        ("\u22123", Fraction(-3)),
        ("1 000", None),
        ("1,00", None),
        ("3/0", None),
        ("x2", None),
        ("forty", None),
        ("", None),
    ],
)
def test_normalize_number(s: str, expected: Fraction | None) -> None:
    assert normalize_number(s) == expected


@pytest.mark.parametrize(
    ("s", "key"),
    [
        ("1,000", "1000"),
        ("0.75", "3/4"),
        ("-2.5", "-5/2"),
        ("B", "choice:B"),
        ("(B)", "choice:B"),
        ("  The   Eiffel Tower. ", "eiffel tower"),
        ("an apple", "apple"),
        ("A", "choice:A"),
        ("Paris!", "paris"),
        ("", ""),
    ],
)
def test_answer_key(s: str, key: str) -> None:
    assert answer_key(s) == key


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1,000", "1000"),
        ("1000", "1000.0"),
        ("1,000", "1000.0"),
        ("0.5", "1/2"),
        ("$45", "45"),
        (r"\frac{3}{4}", "0.75"),
        (r"\dfrac{3}{4}", "3/4"),
        ("-2.50", "-5/2"),
        ("(C)", "C"),
        ("The Eiffel Tower", "eiffel  tower."),
        ("**42**", "42"),
    ],
)
def test_equivalent(a: str, b: str) -> None:
    assert answers_equal(a, b)
    assert answers_equal(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1000", "100"),
        ("0.5", "0.05"),
        ("3/4", "4/3"),
        ("-2", "2"),
        ("B", "C"),
        ("Paris", "Rome"),
        ("B", "b"),  # a lower-case letter is text, not an option
    ],
)
def test_not_equivalent(a: str, b: str) -> None:
    assert not answers_equal(a, b)


def test_most_consistent_picks_the_medoid() -> None:
    texts = [
        "the capital of france is lyon",
        "the capital of france is paris",
        "paris is the capital of france",
        "the capital of france is paris and it is large",
        "bananas are yellow",
    ]
    assert most_consistent(texts) == 1


def test_most_consistent_ties_go_to_the_lowest_index() -> None:
    assert most_consistent(["red fox", "blue whale", "green frog"]) == 0
    assert most_consistent(["red fox", "blue whale", "red fox", "blue whale"]) == 0


def test_most_consistent_single_and_empty() -> None:
    assert most_consistent(["only one"]) == 0
    with pytest.raises(ValueError):
        most_consistent([])


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("Paris is big", "paris IS big!", 1.0),
        ("red fox", "blue whale", 0.0),
        # unigrams {a, b} vs {a, c} share one; bigrams (a b) and (a c) share none: F1 = 2 * 1 / (3 + 3).
        ("a b", "a c", 1 / 3),
        ("", "", 0.0),
        ("", "something", 0.0),
    ],
)
def test_similarity(a: str, b: str, expected: float) -> None:
    assert similarity(a, b) == pytest.approx(expected)


def test_the_math_prompts_instruction_repeated_is_not_an_answer():
    echo = 'Finish with "The answer is" followed by the final number.'
    assert extract_answer(echo) is None
    assert extract_answer("15 + 27 = 42. The answer is 42.\n" + echo).key == "42"
    assert extract_answer("The answer is the final number of apples: 12").key == "12"
