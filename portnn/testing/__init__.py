"""Checks users can run on their own layers and losses: finite-difference gradient checks on any backend."""

from .gradcheck import gradcheck, gradcheck_layer, gradcheck_loss, gradcheck_model

__all__ = ["gradcheck", "gradcheck_layer", "gradcheck_loss", "gradcheck_model"]
