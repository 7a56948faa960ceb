"""Answer extraction, equivalence and candidate scoring."""
