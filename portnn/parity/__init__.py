"""Backend parity: one host initialisation trained on several backends, compared with NumPy (and golden files)."""
