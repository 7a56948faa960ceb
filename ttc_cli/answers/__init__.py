"""Answers as arithmetic: extracting a stated or printed answer, voting, stop rules, confidence and
calibration. Nothing here runs a model or a program; verifiers (`ttc_cli.verifiers`) are apart."""
