"""portnn: a from-scratch neural network written against the Python Array API standard.

The same forward and backward code trains on NumPy, CuPy, PyTorch, JAX and array-api-strict.
"""

from .activations import ReLU, Sigmoid, Tanh
from .dense import Dense
from .layer import Layer
from .losses import MSE, SSE, Loss, SoftmaxCrossEntropy
from .optimizers import SGD, Optimizer
from .sequential import Sequential
from .host import to_numpy

__version__ = "0.1.0"

__all__ = ["MSE", "SGD", "SSE", "Dense", "Layer", "Loss", "Optimizer", "ReLU", "Sequential", "Sigmoid", "SoftmaxCrossEntropy", "Tanh",
           "to_numpy", "__version__"]
