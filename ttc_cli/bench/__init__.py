"""`ttc bench`: a file of questions, every configuration on each, the scores, and fitted profiles."""
