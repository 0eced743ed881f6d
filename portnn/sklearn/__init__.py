"""scikit-learn estimators that train portnn networks on any portnn backend, as skorch does for torch: use them in
pipelines, grid searches and cross-validation (needs scikit-learn >= 1.6: ``pip install "portnn[sklearn]"``)."""

from .estimators import NeuralNetClassifier, NeuralNetRegressor

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor"]
