"""The host boundary: the backend registry, placement, host transfers and host random numbers.

The only package that names a backend or imports NumPy for computation; everything above it receives ``xp``.
"""
