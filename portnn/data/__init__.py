"""Data sets (XOR, spirals, scikit-learn's digits) and named training recipes."""
