"""``portnn train``: train an example recipe on a chosen backend, showing the loss and metrics as they change."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
from tqdm import tqdm

from ..array import backends, host, threads
from ..data import recipes
from ..io import checkpoint
from ..io.duration import format_duration
from ..train import inputs
from ..train.callbacks import Callback, EpochEvent
from ..train.model import Sequential
from ..train.summary import summary
from . import mpi as distributed_cli
from . import paths, plot
from .options import add_compile, add_threads, compile_choice, count, non_negative_int, positive_float, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an example network (default: the seed XOR net on NumPy)")
    p.add_argument("--example", default=None, choices=sorted([*recipes.RECIPES, *recipes.ALIASES]),
                   help="recipe to train (default: seed, or the one a --resume file was trained on)")
    p.add_argument("--backend", default="numpy", help="backend from backends/ (see `portnn backends`)")
    p.add_argument("--device", default=None, help="device string, e.g. cpu, cuda, cuda:1, device1")
    p.add_argument("--dtype", default=None, choices=["float32", "float64"],
                   help="float dtype (default: float64, or the --resume file's)")
    p.add_argument("--epochs", type=non_negative_int, default=None,
                   help="epochs to train (default: the recipe's; with --resume, those left to reach it; 0 trains "
                        "nothing: the model is reported, and saved with --save, as it is)")
    p.add_argument("--lr", type=positive_float, default=None, help="learning rate (default: the recipe's)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="mini-batch size (default: the recipe's)")
    p.add_argument("--seed", type=non_negative_int, default=1, help="seed of the host-side initialisation and shuffles")
    p.add_argument("--save", default=None, metavar="FILE", help="write the trained model and its training state "
                   "(.npz, or .safetensors: the suffix picks the format)")
    p.add_argument("--resume", default=None, metavar="FILE",
                   help="continue training a model saved with --save (.npz or .safetensors)")
    p.add_argument("--plot", default=None, metavar="FILE.png",
                   help=f"draw the loss/accuracy curves as {'/'.join(s[1:] for s in plot.SUFFIXES)} by the file "
                        "name (needs matplotlib)")
    add_threads(p)
    add_compile(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over MPI: mpiexec -n N python -m mpi4py -m portnn train --distributed ...")
    p.set_defaults(run=run)


def _start(args: argparse.Namespace) -> tuple[recipes.Recipe, Sequential, bool]:
    """(recipe, model, resumed): a fresh model of the recipe, or the one in ``--resume``."""
    if args.resume is None:
        recipe = recipes.get(args.example or "seed")
        return recipe, recipe.model(args.seed), False
    if args.lr is not None:
        raise ValueError("--lr cannot be combined with --resume: the optimizer continues with its saved settings")
    net = checkpoint.load(args.resume)
    saved = net.info.get("example")
    recipe = recipes.get(args.example or saved or "seed")
    if saved is not None and recipe.name != saved:
        raise ValueError(f"--resume {args.resume} holds a model trained on example {saved!r}, not {recipe.name!r}")
    if net.optimizer is None or net.loss is None:
        raise ValueError(f"--resume {args.resume} holds no optimizer state (saved before any training?)")
    return recipe, net, True


def _check_fits(net: Sequential, recipe: recipes.Recipe, x_shape: tuple[int, ...], y_shape: tuple[int, ...],
                path: str) -> None:
    """The --resume model takes the example's inputs and its loss its targets, before anything is printed."""
    assert net.loss is not None  # _start refused a file without one
    where = f"--resume {path}: the model does not fit example {recipe.name!r}"
    out = inputs.output_shape(net, x_shape, f"{where} (inputs of shape {x_shape})")
    try:
        net.loss.check(out, y_shape)
    except ValueError as err:
        raise ValueError(f"{where} (targets of shape {y_shape}): {err}") from err


class Report(Callback):
    """The progress bar and the printed lines: the loss (and metrics) of epoch 1 and of every tenth of training.
    It runs every tenth (``every``), so a compiled full-batch run trains each tenth as one compiled loop; the lines
    of the epochs in between come from the history, which records every epoch."""

    def __init__(self, bar: Any, first: int, every: int) -> None:
        self.bar, self.first, self.every, self.shown = bar, first, every, first

    def on_epoch(self, event: EpochEvent) -> None:
        history, epoch = event.model.history, event.epoch
        self.bar.update(epoch - self.shown)
        self.bar.set_postfix({k.replace("accuracy", "acc"): f"{v:.4g}" for k, v in event.record.items()},
                             refresh=False)
        for e in range(self.shown + 1, epoch + 1):
            if (e - self.first) % self.every == 0 or e == self.first + 1:
                record = {k: v[len(v) - 1 - (epoch - e)] for k, v in history.items()}
                extra = _metrics_text({k: v for k, v in record.items() if k != "loss"})
                self.bar.write(f"epoch {e:>6}  loss {record['loss']:.6g}" + (f"  {extra}" if extra else ""))
        self.shown = epoch


def _metrics_text(record: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.6g}" if k.endswith("loss") else f"{k} {v:.4f}" for k, v in record.items())


def _check_paths(args: argparse.Namespace) -> None:
    """Every file this run reads or writes, before any work (a bad --save used to lose the trained model)."""
    paths.input_file(args.resume, "--resume")
    paths.output_file(args.save, "--save", (".npz", ".safetensors"))
    paths.output_file(args.plot, "--plot", plot.SUFFIXES)
    # --save over --resume is the resume workflow (the file is replaced atomically, after training)
    paths.not_inputs({"--save": args.save, "--plot": args.plot}, {"--resume": args.resume},
                     allowed=(("--save", "--resume"),))
    if args.plot:
        plot.require()  # matplotlib missing: say so now, not after training


def _header(args: argparse.Namespace, recipe: recipes.Recipe, net: Sequential, resumed: bool,
            run: tuple[Any, str, int, float], X_host: Any, test: Any, kwargs: dict[str, Any]) -> None:
    """What is about to train: the recipe, the model's summary, where, how long, and the controls."""
    device, dtype, epochs, lr = run
    print(f"portnn train: {recipe.description}")
    print(summary(net, X_host.shape[1:]))
    if resumed:
        print(f"resuming {args.resume} at epoch {net.epoch} ({net.optimizer!r}, {net.loss!r})")
    print(f"backend {args.backend}, device {device}, dtype {dtype}, {count(epochs, 'epoch')}, "
          f"lr {getattr(net.optimizer, 'lr', lr) if resumed else lr}, seed {net.seed}, "
          f"threads {threads.threads_note(args.backend)}")
    if test is not None:
        print(f"{X_host.shape[0]} training samples; val_* = the {test[0].shape[0]} held-out test samples "
              "(never trained on)")
    schedule, clip = kwargs.get("schedule", net.schedule), kwargs.get("clip_norm", net.clip_norm)
    parts = [] if schedule is None else [f"schedule {schedule!r}" + (f" at t = {net.schedule_t}" if resumed else "")]
    parts += [] if clip is None else [f"gradient clipping at global norm {clip:g}"]
    if parts:
        print(", ".join(parts))


def run(args: argparse.Namespace) -> int:
    _check_paths(args)
    compile = compile_choice(args)
    threads.use_threads(args.threads)
    comm = distributed_cli.for_train(args)  # None unless --distributed; silences every rank but 0
    recipe, net, resumed = _start(args)
    remaining = max(recipe.epochs - net.epoch, 0) if resumed else recipe.epochs
    epochs = remaining if args.epochs is None else args.epochs
    if args.plot and epochs == 0 and not net.history.get("loss"):
        raise ValueError(f"--plot {args.plot}: 0 epochs to train and no earlier history, so there is nothing to draw")
    xp, device = backends.load(args.backend, args.device)
    dtype = args.dtype or (net.dtype if resumed and net.dtype else "float64")
    net.to(xp, device, dtype)

    def put(data: Any) -> Any:
        return host.from_numpy(data, xp, device=device, dtype=None)

    X_host, y_host = recipe.data()
    if resumed:
        _check_fits(net, recipe, X_host.shape, y_host.shape, args.resume)
    X, y = put(X_host), put(y_host)
    test = None if recipe.test_data is None else tuple(put(a) for a in recipe.test_data())
    batch_size = args.batch_size if args.batch_size is not None else net.info.get("batch_size", recipe.batch_size)
    lr = recipe.lr if args.lr is None else args.lr
    # a fresh run's schedule spans the recipe's epochs (or more), so a later --resume continues the same one
    kwargs: dict[str, Any] = {} if resumed else {"loss": recipe.loss(), "optimizer": recipe.optimizer(lr),
                                                 "metrics": list(recipe.metrics) or None,
                                                 **recipe.controls(max(epochs, recipe.epochs))}
    _header(args, recipe, net, resumed, (device, dtype, epochs, lr), X_host, test, kwargs)
    # the bar after the last header line, which is flushed first: tqdm draws on stderr (unbuffered) and its next
    # refresh (a carriage return) would overwrite a line printed after it
    sys.stdout.flush()
    bar = tqdm(total=epochs, unit="epoch", disable=args.quiet or None, dynamic_ncols=True, mininterval=0.2)
    progress = Report(bar, net.epoch, max(1, epochs // 10))
    start = time.perf_counter()
    try:
        net.fit(X, y, epochs=epochs, batch_size=batch_size, validation_data=test, callbacks=[progress],
                communicator=comm, compile=compile, **kwargs)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    distributed_cli.finish_train(net, comm)
    if epochs == 0:
        print(f"0 epochs: nothing trained, the model stays at epoch {net.epoch}")
    else:
        print(f"trained in {format_duration(seconds)} ({format_duration(seconds / epochs)} per epoch), now at epoch "
              f"{net.epoch}")
        stats = net.compile_stats
        if stats:
            print(f"compiled with {stats['method']}: {stats['traces']} trace(s), "
                  f"{format_duration(stats['compile_seconds'])} of it compiling")
    _report(net, X, X_host, y_host, test)
    for line in recipe.report(net) if recipe.report is not None else []:  # the recipe's own score (sort-gpt's)
        print(line)

    if args.save:
        net.info = {"example": recipe.name, "batch_size": batch_size, "input_shape": list(X_host.shape[1:])}
        checkpoint.save(net, args.save)
        print(f"saved to {args.save} (epoch {net.epoch}; continue with `portnn train --resume {args.save}`)")
    if args.plot:
        plot.history(net.history, args.plot, title=f"portnn {recipe.name} ({args.backend}, {dtype})")
        print(f"plot written to {args.plot}")
    return 0


def _report(net: Sequential, X: Any, X_host: np.ndarray, y_host: np.ndarray, test: tuple[Any, Any] | None) -> None:
    """Print held-out results, or for a tiny data set (the seed's XOR) every prediction."""
    if test is not None:
        result = net.evaluate(*test)
        n = test[0].shape[0]
        line = f"test loss {result['loss']:.6g}"
        if "accuracy" in result:
            line += f"  test accuracy {result['accuracy']:.2%} ({round(result['accuracy'] * n)}/{n})"
        print(line)
    pred = host.to_numpy(net.predict(X))
    if pred.shape[0] <= 16:
        print("\n".join(["", "input            prediction  target", *(
            f"{x.tolist()!s:<16} {p:>10.4f}  {t:>6g}" for x, p, t in zip(
                X_host, pred.reshape(len(pred), -1)[:, 0], y_host.reshape(len(y_host), -1)[:, 0], strict=True))]))
