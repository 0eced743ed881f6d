"""portnn: a from-scratch neural network written against the Python Array API standard.

The same forward and backward code trains on NumPy, CuPy, PyTorch, JAX and array-api-strict.
"""

from .activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .checkpoint import load, save
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .flatten import Flatten
from .host import to_numpy
from .layer import Layer
from .losses import MSE, SSE, BinaryCrossEntropy, Loss, SoftmaxCrossEntropy
from .optimizers import SGD, Adam, Optimizer
from .pooling import AvgPool2D, MaxPool2D
from .sequential import Sequential
from .training import History

__version__ = "0.1.0"

__all__ = ["MSE", "SGD", "SSE", "Adam", "AvgPool2D", "BinaryCrossEntropy", "Conv2D", "Dense", "Dropout", "Flatten",
           "History", "Identity", "Layer", "LeakyReLU", "Loss", "MaxPool2D", "Optimizer", "ReLU", "Sequential",
           "Sigmoid", "Softmax", "SoftmaxCrossEntropy", "Tanh", "__version__", "load", "save", "to_numpy"]
