"""``portnn train``: train an example recipe on a chosen backend, showing the loss as it falls."""

from __future__ import annotations

import argparse
import time

from tqdm import tqdm

from .. import backends, checkpoint, host, recipes


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an example network (default: the seed XOR net on NumPy)")
    p.add_argument("--example", default="seed", choices=sorted(recipes.RECIPES), help="recipe to train")
    p.add_argument("--backend", default="numpy", help="backend from backends/ (see `portnn backends`)")
    p.add_argument("--device", default=None, help="device string, e.g. cpu, cuda, cuda:1, device1")
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the recipe's)")
    p.add_argument("--seed", type=int, default=1, help="seed of the host-side initialisation")
    p.add_argument("--save", default=None, metavar="FILE.npz", help="write the trained model here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    recipe = recipes.get(args.example)
    xp, device = backends.load(args.backend, args.device)
    X_host, y_host = recipe.data()
    X = host.from_numpy(X_host, xp, device=device, dtype=None)
    y = host.from_numpy(y_host, xp, device=device, dtype=None)
    net = recipe.model(args.seed)
    net.to(xp, device, args.dtype)
    epochs = recipe.epochs if args.epochs is None else args.epochs
    lr = recipe.lr if args.lr is None else args.lr
    print(f"portnn train: {recipe.description}")
    print(f"backend {args.backend}, device {device}, dtype {args.dtype}, {epochs} epochs, lr {lr}, seed {args.seed}")

    bar = tqdm(total=epochs, unit="epoch", disable=args.quiet or None, dynamic_ncols=True, mininterval=0.2)
    every = max(1, epochs // 10)

    def progress(epoch: int, loss: float) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.6g}", refresh=False)
        if epoch % every == 0 or epoch == 1:
            bar.write(f"epoch {epoch:>6}  loss {loss:.6g}")

    start = time.perf_counter()
    try:
        net.fit(X, y, loss=recipe.loss(), optimizer=recipe.optimizer(lr), epochs=epochs,
                batch_size=recipe.batch_size, progress=progress)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    print(f"trained in {seconds:.2f} s ({seconds / max(epochs, 1) * 1e6:.0f} µs per epoch)")

    pred = host.to_numpy(net.predict(X))
    if pred.shape[0] <= 16:
        print("\n".join(["", "input            prediction  target", *(
            f"{str(x.tolist()):<16} {p:>10.4f}  {t:>6g}" for x, p, t in zip(
                X_host, pred.reshape(len(pred), -1)[:, 0], y_host.reshape(len(y_host), -1)[:, 0], strict=True))]))
    if args.save:
        checkpoint.save(net, args.save)
        print(f"saved to {args.save}")
    return 0
