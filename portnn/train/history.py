"""The history of one ``fit``: the loss of each epoch (a list) with every recorded quantity by name."""

from __future__ import annotations


class History(list):
    """The loss of each epoch of one ``fit`` (a list of floats), with ``metrics``: every recorded quantity by name
    ('loss', 'accuracy', 'val_loss', 'val_accuracy'), one value per epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: dict[str, list[float]] = {}

    def record(self, values: dict[str, float], everything: dict[str, list[float]]) -> None:
        """Append one epoch's values here and to ``everything`` (the model's history over all fits)."""
        self.append(values["loss"])
        for key, value in values.items():
            self.metrics.setdefault(key, []).append(value)
            everything.setdefault(key, []).append(value)

    def record_many(self, columns: dict[str, list[float]], everything: dict[str, list[float]]) -> None:
        """Append several epochs at once, one list per quantity ('loss' first): as many ``record`` calls."""
        self.extend(columns["loss"])
        for key, values in columns.items():
            self.metrics.setdefault(key, []).extend(values)
            everything.setdefault(key, []).extend(values)

    def truncate(self, keep: int, everything: dict[str, list[float]]) -> None:
        """Keep only this fit's first ``keep`` epochs, here and in ``everything`` (the model's history)."""
        drop = len(self) - keep
        if drop <= 0:
            return
        del self[keep:]
        for key, values in self.metrics.items():
            del values[keep:]
            del everything[key][len(everything[key]) - drop:]
            if not everything[key]:  # as if the epochs had never been recorded
                del everything[key]
