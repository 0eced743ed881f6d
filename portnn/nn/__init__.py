"""Layers, losses, metrics and initialisers: the network's math, written against the Array API standard only."""

from .activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .flatten import Flatten
from .layer import LAYERS, Context, Layer
from .losses import LOSSES, MSE, SSE, BinaryCrossEntropy, Loss, SoftmaxCrossEntropy
from .pooling import AvgPool2D, MaxPool2D

__all__ = ["LAYERS", "LOSSES", "MSE", "SSE", "AvgPool2D", "BinaryCrossEntropy", "Context", "Conv2D", "Dense",
           "Dropout", "Flatten", "Identity", "Layer", "LeakyReLU", "Loss", "MaxPool2D", "ReLU", "Sigmoid", "Softmax",
           "SoftmaxCrossEntropy", "Tanh"]
