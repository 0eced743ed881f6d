"""``portnn summary``: a saved model as a table, as Keras prints it: each layer's output shape, its parameter and
state counts, and the totals with their bytes (``portnn.train.summary``)."""

from __future__ import annotations

import argparse

from ..io import checkpoint
from ..train.summary import summary
from . import paths
from .options import count, sample_shape


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="print a saved model's layers, output shapes and parameter counts")
    p.add_argument("--model", required=True, metavar="FILE", help="checkpoint written by portnn.save (.npz or "
                   ".safetensors)")
    p.add_argument("--input-shape", type=sample_shape, default=None, metavar="C,H,W",
                   help="one sample's shape (default: the one `portnn train --save` records, or the first Dense "
                        "layer's inputs)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    paths.input_file(args.model, "--model")
    net = checkpoint.load(args.model)
    print(f"model {args.model}: trained {count(net.epoch, 'epoch')}")
    print(summary(net, args.input_shape))
    return 0
