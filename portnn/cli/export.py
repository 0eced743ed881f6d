"""``portnn export``: write a saved model as ONNX (traced from its own forward pass on ndonnx arrays) and/or as
.safetensors."""

from __future__ import annotations

import argparse

from ..data import recipes
from ..interop import export_onnx, onnx_export
from ..io import checkpoint
from . import paths
from .options import sample_shape


def _batch(text: str) -> int | str:
    if text == "dynamic":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 'dynamic' or a positive int, got {text!r}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a saved model as ONNX and/or .safetensors")
    p.add_argument("--model", required=True, metavar="FILE", help="checkpoint written by portnn.save (.npz or "
                   ".safetensors)")
    p.add_argument("--onnx", default=None, metavar="FILE.onnx", help="write the model's inference graph here")
    p.add_argument("--safetensors", default=None, metavar="FILE.safetensors",
                   help="write the whole checkpoint (weights, state, optimizer state, training JSON) here")
    p.add_argument("--batch", type=_batch, default="dynamic", help="'dynamic' (default: any batch size) or an int")
    p.add_argument("--dtype", default=None, choices=["float32", "float64"], help="default: the model's dtype")
    p.add_argument("--input-shape", type=sample_shape, default=None, metavar="C,H,W",
                   help="one sample's shape (default: the first Dense layer's inputs, or the data of the example "
                        "the model was trained on)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    paths.input_file(args.model, "--model")
    paths.output_file(args.onnx, "--onnx", (".onnx",))
    paths.output_file(args.safetensors, "--safetensors", (".safetensors",))
    paths.not_inputs({"--onnx": args.onnx, "--safetensors": args.safetensors}, {"--model": args.model})
    if args.onnx is None and args.safetensors is None:
        raise ValueError("give --onnx FILE.onnx and/or --safetensors FILE.safetensors: nothing to write")
    if args.onnx:
        onnx_export.require()  # the optional packages, before any work
    net = checkpoint.load(args.model)
    if args.safetensors:
        checkpoint.save(net, args.safetensors)
        print(f"checkpoint written to {args.safetensors} (epoch {net.epoch})")
    if args.onnx:
        shape = args.input_shape
        saved, example = net.info.get("input_shape"), net.info.get("example")
        if shape is None and isinstance(saved, list) and all(isinstance(d, int) and d > 0 for d in saved):
            shape = tuple(saved)  # `portnn train --save` records it
        elif shape is None and example in recipes.RECIPES and not hasattr(net.layers[0], "in_features"):
            shape = tuple(recipes.get(example).data()[0].shape[1:])  # files saved before it did
        done = export_onnx(net, args.onnx, batch=args.batch, dtype=args.dtype, input_shape=shape)
        (name, inp), (out_name, out) = next(iter(done.inputs.items())), next(iter(done.outputs.items()))
        print(f"ONNX model written to {done.path}: opset {done.opset}, {done.nodes} nodes after onnxruntime's "
              f"{done.optimization} optimisation ({done.nodes_traced} traced), {done.dtype}, input {name} {inp}, "
              f"output {out_name} {out}")
    return 0
