"""``portnn predict``: load a saved model, run it on inputs from a .npy file, print (and optionally save) the result."""

from __future__ import annotations

import argparse

import numpy as np

from ..array import backends, host, threads
from ..io import checkpoint
from ..nn import BinaryCrossEntropy, SoftmaxCrossEntropy
from ..train.model import Sequential
from . import paths
from .options import add_compile, add_threads, compile_choice, count, non_negative_int, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict with a model saved by `portnn train --save` (or portnn.save)")
    p.add_argument("--model", required=True, metavar="FILE",
                   help="checkpoint written by portnn.save (.npz or .safetensors)")
    p.add_argument("--input", required=True, metavar="FILE.npy", help="inputs, one row per sample (numpy .npy)")
    p.add_argument("--output", default=None, metavar="FILE.npy",
                   help="write the predictions here: class labels for classifiers, else the network outputs")
    p.add_argument("--raw", action="store_true", help="print/save the raw network outputs even for classifiers")
    p.add_argument("--backend", default="numpy", help="backend from backends/ (see `portnn backends`)")
    p.add_argument("--device", default=None, help="device string, e.g. cpu, cuda, device1")
    p.add_argument("--dtype", default=None, choices=["float32", "float64"], help="default: the model's dtype")
    p.add_argument("--limit", type=non_negative_int, default=10, help="rows to print (default 10; 0 prints none)")
    p.add_argument("--batch-size", type=positive_int, default=1024, metavar="N",
                   help="rows per forward pass (default 1024): memory bounded by a batch, the same outputs")
    add_threads(p)
    add_compile(p)
    p.set_defaults(run=run)


def _read_input(path: str, net: Sequential) -> np.ndarray:
    """The --input array: one numeric .npy (no pickle), finite, with rows the model's first layer accepts."""
    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise ValueError("it does not start with the .npy magic bytes (save it with numpy.save)")
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as err:
        raise ValueError(f"--input {path} is not a readable .npy array: {err}") from err
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "biuf":
        raise ValueError(f"--input {path} must hold one numeric .npy array, got "
                         f"{getattr(data, 'dtype', type(data).__name__)}")
    if data.ndim == 0 or data.shape[0] == 0:
        raise ValueError(f"--input {path} has shape {data.shape}: no rows to predict (one row per sample)")
    shape = data.shape
    for i, layer in enumerate(net.layers):  # the model's own shape rules, before anything is computed
        shape = layer.output_shape(shape, f"--input {path}: layer {i}")
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        bad = np.flatnonzero(~np.isfinite(data.reshape(data.shape[0], -1)).all(axis=1))
        raise ValueError(f"--input {path} has nan or inf in {bad.size} of {data.shape[0]} rows, the first in row "
                         f"{int(bad[0])}; remove or impute them first")
    return data


def run(args: argparse.Namespace) -> int:
    paths.input_file(args.model, "--model")
    paths.input_file(args.input, "--input")
    paths.output_file(args.output, "--output", (".npy",))
    paths.not_inputs({"--output": args.output}, {"--model": args.model, "--input": args.input})
    compile = compile_choice(args)
    threads.use_threads(args.threads)
    net = checkpoint.load(args.model)
    X_host = _read_input(args.input, net)
    xp, device = backends.load(args.backend, args.device)
    dtype = args.dtype or net.dtype or "float64"
    net.to(xp, device, dtype)
    out = host.to_numpy(net.predict(host.from_numpy(X_host, xp, device=device, dtype=None),
                                    batch_size=args.batch_size, compile=compile))

    if isinstance(net.loss, SoftmaxCrossEntropy) and not args.raw:
        kind, result = "class", np.argmax(out, axis=1)
    elif isinstance(net.loss, BinaryCrossEntropy) and not args.raw:
        kind, result = "class", (out > 0.0).astype(np.int64)  # logit > 0  <=>  probability > 0.5
    else:
        kind, result = "output", out
    print(f"model {args.model}: {count(len(net.layers), 'layer')}, trained {count(net.epoch, 'epoch')}"
          + (f" with {type(net.loss).__name__}" if net.loss is not None else ""))
    print(f"input {args.input}: shape {X_host.shape}; backend {args.backend}, device {device}, dtype {dtype}")
    shown = result[:max(args.limit, 0)]
    if len(shown):
        print(f"{'row':>5}  {kind}")
        for i, row in enumerate(shown):
            values = np.atleast_1d(row)
            print(f"{i:>5}  " + "  ".join(str(v) if kind == "class" else f"{v:.6g}" for v in values))
        if len(result) > len(shown):
            print(f"  ... {count(len(result) - len(shown), 'more row')}")
    if kind == "class":
        counts = np.bincount(np.ravel(result))
        print("predicted classes: " + ", ".join(f"{c}: {n}" for c, n in enumerate(counts) if n))
    if args.output:
        checkpoint.atomic_write(args.output, lambda f: np.save(f, result, allow_pickle=False))
        print(f"wrote {kind}{'es' if kind == 'class' else 's'} of shape {result.shape} to {args.output}")
    return 0
