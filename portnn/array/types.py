"""Type aliases for what the Array API standard leaves untyped: an array, its namespace and its device."""

from __future__ import annotations

from typing import Any, TypeAlias

Array: TypeAlias = Any  # an array of any Array API namespace
Namespace: TypeAlias = Any  # the namespace ``xp`` from array_api_compat.array_namespace
Device: TypeAlias = Any  # a device object of that namespace
Params: TypeAlias = list[dict[str, Any]]  # one dict per layer: parameter name -> array ({} for parameter-free layers)
