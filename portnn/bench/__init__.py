"""The benchmark suite behind ``portnn bench`` and ``ci/bench``: ratios measured side by side in one run."""
