"""portnn: a from-scratch neural network written against the Python Array API standard.

The same forward and backward code trains on NumPy, CuPy, PyTorch, JAX and array-api-strict. This module is the
public API; the packages below it show the architecture (imports run one way, checked by import-linter):

    array  <-  nn, optim  <-  train  <-  io, data, testing  <-  distributed  <-  parity, bench  <-  cli
"""

from ._version import __version__
from .array import backends, host
from .array.host import to_numpy
from .data import datasets, recipes
from .io.checkpoint import load, save
from .nn import (
                 MSE,
                 SSE,
                 AvgPool2D,
                 BinaryCrossEntropy,
                 Context,
                 Conv2D,
                 Dense,
                 Dropout,
                 Flatten,
                 Identity,
                 Layer,
                 LeakyReLU,
                 Loss,
                 MaxPool2D,
                 ReLU,
                 Sigmoid,
                 Softmax,
                 SoftmaxCrossEntropy,
                 Tanh,
)
from .optim import SGD, Adam, Optimizer
from .train import Callback, EpochEvent, History, Sequential, StepEvent

__all__ = ["MSE", "SGD", "SSE", "Adam", "AvgPool2D", "BinaryCrossEntropy", "Callback", "Context", "Conv2D", "Dense",
           "Dropout", "EpochEvent", "Flatten", "History", "Identity", "Layer", "LeakyReLU", "Loss", "MaxPool2D",
           "Optimizer", "ReLU", "Sequential", "Sigmoid", "Softmax", "SoftmaxCrossEntropy", "StepEvent", "Tanh",
           "__version__", "backends", "datasets", "host", "load", "recipes", "save", "to_numpy"]
