"""portnn: a from-scratch neural network written against the Python Array API standard.

The same forward and backward code trains on NumPy, CuPy, PyTorch, JAX and array-api-strict. This module is the
public API; the packages below it show the architecture (imports run one way, checked by import-linter):

    array  <-  nn, optim  <-  train  <-  io, data, testing  <-  interop, sklearn  <-  distributed  <-  parity, bench
          <-  cli
"""

from . import interop, testing  # portnn.testing.gradcheck_layer after `import portnn` alone
from ._version import __version__
from .array import backends, host
from .array.host import to_numpy
from .data import datasets, recipes
from .interop import export_onnx
from .io.checkpoint import load, save
from .nn import (
    ELU,
    GELU,
    GRU,
    LSTM,
    MSE,
    SSE,
    AvgPool2D,
    BatchNorm1d,
    BatchNorm2d,
    BinaryCrossEntropy,
    Context,
    Conv1D,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalAvgPoolTime,
    Identity,
    LastStep,
    Layer,
    LayerNorm,
    LeakyReLU,
    Loss,
    MaxPool2D,
    MultiHeadAttention,
    PositionalEmbedding,
    ReLU,
    Residual,
    Sigmoid,
    SiLU,
    Softmax,
    SoftmaxCrossEntropy,
    Softplus,
    Tanh,
)
from .optim import (
    SGD,
    Adam,
    AdamW,
    CosineAnnealing,
    ExponentialLR,
    Optimizer,
    RMSprop,
    Schedule,
    StepLR,
    clip_by_global_norm,
)
from .train import Callback, EarlyStopping, EpochEvent, History, Sequential, StepEvent
from .train.generate import generate

__all__ = ["ELU", "GELU", "GRU", "LSTM", "MSE", "SGD", "SSE", "Adam", "AdamW", "AvgPool2D", "BatchNorm1d",
           "BatchNorm2d", "BinaryCrossEntropy", "Callback", "Context", "Conv1D", "Conv2D", "CosineAnnealing", "Dense",
           "Dropout", "EarlyStopping", "Embedding", "EpochEvent", "ExponentialLR", "Flatten", "GlobalAvgPool1D",
           "GlobalAvgPool2D", "GlobalAvgPoolTime", "History", "Identity", "LastStep", "Layer", "LayerNorm", "LeakyReLU",
           "Loss", "MaxPool2D", "MultiHeadAttention", "Optimizer", "PositionalEmbedding", "RMSprop", "ReLU", "Residual",
           "Schedule", "Sequential", "SiLU", "Sigmoid", "Softmax", "SoftmaxCrossEntropy", "Softplus", "StepEvent",
           "StepLR", "Tanh", "__version__", "backends", "clip_by_global_norm", "datasets", "export_onnx", "generate",
           "host", "interop", "load", "recipes", "save", "testing", "to_numpy"]
