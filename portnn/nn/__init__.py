"""Layers, losses, metrics and initialisers: the network's math, written against the Array API standard only."""

from .activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .attention import MultiHeadAttention
from .conv import Conv2D
from .conv1d import Conv1D
from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding
from .flatten import Flatten
from .global_pool import GlobalAvgPool1D, GlobalAvgPool2D
from .gru import GRU
from .layer import LAYERS, Context, Layer
from .losses import LOSSES, MSE, SSE, BinaryCrossEntropy, Loss, SoftmaxCrossEntropy
from .lstm import LSTM
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm
from .pooling import AvgPool2D, MaxPool2D
from .positional import PositionalEmbedding
from .residual import Residual
from .smooth import ELU, GELU, SiLU, Softplus
from .time_pool import GlobalAvgPoolTime, LastStep

__all__ = ["ELU", "GELU", "GRU", "LAYERS", "LOSSES", "LSTM", "MSE", "SSE", "AvgPool2D", "BatchNorm1d", "BatchNorm2d",
           "BinaryCrossEntropy", "Context", "Conv1D", "Conv2D", "Dense", "Dropout", "Embedding", "Flatten",
           "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPoolTime", "Identity", "LastStep", "Layer", "LayerNorm",
           "LeakyReLU", "Loss", "MaxPool2D", "MultiHeadAttention", "PositionalEmbedding", "ReLU", "Residual", "SiLU",
           "Sigmoid", "Softmax", "SoftmaxCrossEntropy", "Softplus", "Tanh"]
