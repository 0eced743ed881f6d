"""Models that leave portnn: PyTorch modules (``to_torch``/``from_torch``) and ONNX export from the model's own Array
API forward pass (``export_onnx``, on ndonnx arrays). The optional libraries are imported only when called."""

from .onnx_export import OnnxExport, export_onnx
from .torch_modules import from_torch, to_torch

__all__ = ["OnnxExport", "export_onnx", "from_torch", "to_torch"]
