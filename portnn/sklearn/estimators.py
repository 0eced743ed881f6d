"""scikit-learn estimators that train a portnn network: ``NeuralNetClassifier`` and ``NeuralNetRegressor``.

They follow scikit-learn's rules (the constructor only stores parameters, ``fit`` checks them and the data, fitted
attributes end in ``_``) and MLPClassifier's parameter names where the meaning is the same, so they work in
pipelines, grid searches, cross-validation and ``clone``/pickle. The network trains on any portnn backend
(``backend``/``device``/``dtype``); inputs and outputs stay scikit-learn's (see ``portnn.sklearn.arrays``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

try:
    from sklearn.utils.validation import validate_data
except ImportError as err:  # pragma: no cover - scikit-learn < 1.6
    raise ImportError(f"portnn.sklearn needs scikit-learn >= 1.6 (validate_data, __sklearn_tags__); found "
                      f"{sklearn.__version__}") from err

from ..array import backends, host
from ..array.placement import Placement
from ..nn import MSE, Loss, SoftmaxCrossEntropy
from ..train import Callback, EarlyStopping, Sequential, inputs
from . import settings
from .arrays import Space, host_floats, like, space_of, to_host
from .snapshot import freeze, thaw

SEED_RANGE = 2**31 - 1  # seeds drawn from random_state: model weights, shuffles, the early-stopping split


class _NeuralNet(BaseEstimator):
    """What both estimators share: parameters, building and placing the model, training, pickling."""

    _loss_type: type[Loss]
    model_: Sequential  # fitted attributes, set by fit/partial_fit (declared for type checkers only)
    loss_curve_: list[float]
    n_iter_: int
    n_outputs_: int

    def __init__(
        self,
        layers: Any = None,
        *,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        optimizer: str = "adam",
        lr: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        max_iter: int = 200,
        batch_size: int | str = "auto",
        shuffle: bool = True,
        tol: float | None = 1e-4,
        n_iter_no_change: int = 10,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        random_state: Any = None,
        backend: str = "numpy",
        device: str | None = None,
        dtype: str = "float64",
        compile: bool | str = "auto",
        verbose: int = 0,
    ) -> None:
        self.layers = layers
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.compile = compile
        self.verbose = verbose

    # ---- what each estimator defines ------------------------------------------------------------------------
    def _targets(self, y: Any, *, first: bool, classes: Any = None) -> np.ndarray:
        """Host training targets of validated ``y``; on the first fit also the fitted target attributes."""
        raise NotImplementedError

    def _stratify(self, y: np.ndarray) -> np.ndarray | None:
        """The labels an early-stopping split keeps in proportion (classes), or None."""
        return None

    def _device_targets(self, y: np.ndarray, p: Placement) -> Any:
        """Host targets on the model's backend: floats in its dtype (labels override this)."""
        return host.from_numpy(y, p.xp, device=p.device, dtype=p.dtype)

    # ---- fitting --------------------------------------------------------------------------------------------
    def _validate_fit(self, X: Any, y: Any, *, first: bool) -> tuple[np.ndarray, Any]:
        """(host features, validated y), recording the inputs' namespace on the first fit."""
        X, y = validate_data(self, X, y, reset=first, accept_sparse=False, multi_output=self._multi_output(),
                             y_numeric=not isinstance(self, ClassifierMixin))
        if first:
            self._input_space = space_of(X).key  # under array_api_dispatch, predict must get the same
        return host_floats(X), y

    def _multi_output(self) -> bool:
        """Whether y may be 2-D (regression targets); a classifier's y is one label per row."""
        return False

    def _build(self, s: settings.Settings, n_samples: int, n_features: int, n_outputs: int, model_seed: int) -> None:
        """A fresh model in ``model_``, placed on ``backend``/``device`` as ``dtype``; its output shape for the
        (n_samples, n_features) inputs is checked first: (n_samples, n_outputs), or a ValueError naming ``layers``."""
        net = Sequential(*s.network(n_features, n_outputs), seed=model_seed, dtype=s.dtype)
        where = f"{type(self).__name__}: layers({n_features}, {n_outputs})"
        found, need = tuple(inputs.output_shape(net, (n_samples, n_features), where)), (n_samples, n_outputs)
        if found != need:
            raise ValueError(f"{where} builds a network with output shape {found}; it must be {need}"
                             f"{self._outputs_note(n_outputs)}")
        xp, device = backends.load(s.backend, s.device)
        net.to(xp, device, s.dtype)
        self._placed_on = (s.backend, s.device, s.dtype, s.compile)  # fitted here: where predict runs
        self.model_ = net
        self.n_outputs_ = n_outputs

    def _placement(self) -> Placement:
        """Where ``model_`` computes: where it lives, or (just unpickled) where it was fitted."""
        net = self.model_
        if net.placement is None:
            backend, device, dtype, _ = self._placed_on
            xp, where = backends.load(backend, device)
            net.to(xp, where, dtype)
        assert net.placement is not None
        return net.placement

    def _train(self, s: settings.Settings, X: np.ndarray, y: np.ndarray, *, epochs: int,
               seeds: tuple[int, int, int] | None, controls: bool) -> None:
        """Train ``model_`` for ``epochs`` on host data. ``seeds`` (model, shuffle, split) start a new training (loss,
        optimizer and shuffle seed set; None continues the last one's); ``controls`` adds the early stopping and
        the convergence stop of ``fit``."""
        p = self._placement()

        def device(features: np.ndarray, targets: np.ndarray) -> tuple[Any, Any]:
            return (host.from_numpy(features, p.xp, device=p.device, dtype=p.dtype),
                    self._device_targets(targets, p))

        validation, callbacks = None, list[Callback]()
        if controls and s.early_stopping:
            assert seeds is not None
            X, X_val, y, y_val = _split(X, y, s.validation_fraction, seeds[2], self._stratify(y))
            validation = device(X_val, y_val)
            callbacks.append(EarlyStopping("val_loss", patience=s.n_iter_no_change, min_delta=s.tol or 0.0,
                                           restore_best=True))
        elif controls and s.tol is not None:
            callbacks.append(EarlyStopping("loss", patience=s.n_iter_no_change, min_delta=s.tol, restore_best=False))
        X_dev, y_dev = device(X, y)
        history = self.model_.fit(X_dev, y_dev, epochs=epochs, batch_size=s.batch(X.shape[0]), shuffle=s.shuffle,
                                  validation_data=validation, callbacks=callbacks, compile=s.compile,
                                  progress=_report if s.verbose else None,
                                  # a new training: its loss, a fresh optimizer and the shuffle seed; else continue
                                  loss=None if seeds is None else self._loss_type(),
                                  optimizer=None if seeds is None else s.build_optimizer(),
                                  seed=None if seeds is None else seeds[1])
        curve = [float(v) for v in history]
        self.loss_curve_ = curve if seeds is not None else [*self.loss_curve_, *curve]
        self.n_iter_ = len(self.loss_curve_)
        if validation is not None:
            self.validation_loss_curve_ = [float(v) for v in history.metrics["val_loss"]]

    def _fit(self, X: Any, y: Any) -> Any:
        """fit: check the parameters, then the data, then train a new model for up to ``max_iter`` epochs."""
        s = settings.check(self)
        X_host, y_checked = self._validate_fit(X, y, first=True)
        targets = self._targets(y_checked, first=True)
        seeds = _seeds(self.random_state)
        self._build(s, X_host.shape[0], X_host.shape[1], self._n_outputs(targets), seeds[0])
        self._train(s, X_host, targets, epochs=s.max_iter, seeds=seeds, controls=True)
        return self

    def _partial_fit(self, X: Any, y: Any, classes: Any = None) -> Any:
        """partial_fit: one epoch, on a new model the first time, else continuing ``model_``."""
        s = settings.check(self)
        first = not hasattr(self, "model_")
        X_host, y_checked = self._validate_fit(X, y, first=first)
        targets = self._targets(y_checked, first=first, classes=classes)
        seeds = None
        if first:
            seeds = _seeds(self.random_state)
            self._build(s, X_host.shape[0], X_host.shape[1], self._n_outputs(targets), seeds[0])
        elif self._n_outputs(targets) != self.n_outputs_:
            raise ValueError(f"{type(self).__name__}.partial_fit: y has {self._n_outputs(targets)} outputs but the "
                             f"model was fitted with {self.n_outputs_}")
        self._train(s, X_host, targets, epochs=1, seeds=seeds, controls=False)
        return self

    def _n_outputs(self, targets: np.ndarray) -> int:
        """Network outputs for these host targets: their columns (a classifier: its classes)."""
        return int(targets.shape[1])

    def _outputs_note(self, n_outputs: int) -> str:
        """What the network's ``n_outputs`` outputs are, for the message of a network that has others."""
        return f": one output per column of y ({n_outputs})"

    # ---- predicting -----------------------------------------------------------------------------------------
    def _outputs(self, X: Any, method: str) -> tuple[np.ndarray, Space]:
        """The network's outputs for X on the host (in the model's dtype), and the inputs' namespace, device and
        precision (``like`` gives results back there)."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, accept_sparse=False)
        space = space_of(X)
        if sklearn.get_config()["array_api_dispatch"] and space.key != self._input_space:
            raise ValueError(f"{type(self).__name__}.{method}(): inputs must use the same namespace and the same "
                             f"device as those passed to fit(): fit got {self._input_space[0]} arrays on "
                             f"{self._input_space[1]}, {method} got {space.key[0]} arrays on {space.key[1]}")
        p = self._placement()
        out = self.model_.predict(host.from_numpy(host_floats(X), p.xp, device=p.device, dtype=p.dtype),
                                  compile=self._placed_on[3])
        return host.to_numpy(out), space

    # ---- pickling -------------------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """The estimator's state with ``model_`` as a snapshot of layers and host arrays (a placed model holds a
        namespace module and compiled functions, which do not pickle)."""
        state = dict(super().__getstate__())
        if "model_" in state:
            state["model_"] = freeze(state["model_"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the estimator; the model is rebuilt from its snapshot and placed again at its first use."""
        state = dict(state)
        frozen = state.pop("model_", None)
        super().__setstate__(state)
        if frozen is not None:
            self.model_ = thaw(frozen)

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags: Array API inputs are supported (so its Array API checks run)."""
        tags = super().__sklearn_tags__()
        tags.array_api_support = True  # results come back in the inputs' namespace and on their device
        return tags


def _seeds(random_state: Any) -> tuple[int, int, int]:
    """(model seed, shuffle seed, early-stopping split seed) drawn from ``random_state`` as scikit-learn does: an
    int gives the same seeds every time, None draws from NumPy's global generator, a RandomState advances."""
    rng = check_random_state(random_state)
    model, shuffle, split = (int(v) for v in rng.randint(0, SEED_RANGE, size=3))
    return model, shuffle, split


def _split(X: np.ndarray, y: np.ndarray, fraction: float, seed: int,
           stratify: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, X_val, y_train, y_val) for early stopping: stratified by class where every class can be in both
    parts, else a plain random split (tiny data sets)."""
    if stratify is not None:
        try:
            parts = train_test_split(X, y, test_size=fraction, random_state=seed, stratify=stratify)
            return parts[0], parts[1], parts[2], parts[3]
        except ValueError:  # fewer rows in a part than classes, or a class with one row
            pass
    parts = train_test_split(X, y, test_size=fraction, random_state=seed)
    return parts[0], parts[1], parts[2], parts[3]


def _report(epoch: int, loss: float) -> None:
    """verbose: the loss after every epoch, as MLPClassifier prints it."""
    print(f"Iteration {epoch}, loss = {loss:.8f}")


class NeuralNetClassifier(ClassifierMixin, _NeuralNet):
    """A portnn network trained with softmax cross-entropy on the encoded class labels (``classes_``; two classes
    are a 2-logit softmax); ``predict_proba`` is the softmax of its logits.

    Parameters as MLPClassifier's where they share a name: ``hidden_layer_sizes``/``activation`` describe the
    default network (``layers``, a callable ``(n_features, n_outputs) -> list of portnn layers``, replaces it),
    ``max_iter`` is the number of epochs, stopped early when the training loss (or, with ``early_stopping``, the
    loss on a held-out ``validation_fraction``) has not improved by ``tol`` for ``n_iter_no_change`` epochs;
    ``random_state`` seeds the weights, the shuffles and that split. ``backend``/``device``/``dtype`` say where
    portnn trains; ``compile`` as ``Sequential.fit``.

    Fitted: ``model_`` (the ``portnn.Sequential``), ``classes_``, ``n_features_in_``, ``n_outputs_``,
    ``loss_curve_`` (the loss of every epoch), ``n_iter_`` (epochs trained), ``validation_loss_curve_`` (with
    ``early_stopping``)."""

    _loss_type = SoftmaxCrossEntropy

    def fit(self, X: Any, y: Any) -> NeuralNetClassifier:
        """Train a new network on (X, y) for up to ``max_iter`` epochs."""
        return self._fit(X, y)

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> NeuralNetClassifier:
        """Train one more epoch on (X, y), continuing the model, its optimizer state and its shuffles (the first
        call builds the model; ``classes``, all labels of every call, defaults to those of its y)."""
        return self._partial_fit(X, y, classes)

    def _targets(self, y: Any, *, first: bool, classes: Any = None) -> np.ndarray:
        """Labels encoded as 0..k-1 (int64), the classes being ``classes_`` (set on the first fit)."""
        check_classification_targets(y)
        y = to_host(y)
        name = type(self).__name__
        if first:
            self.classes_ = LabelEncoder().fit(y if classes is None else np.asarray(classes)).classes_
            if len(self.classes_) < 2:
                raise ValueError(f"{name}: y has only one class ({self.classes_[0]!r}); a classifier needs at least "
                                 "2 classes")
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(f"{name}.partial_fit: classes={classes!r} is not the same as on the first call, "
                             f"{self.classes_!r}")
        encoder = LabelEncoder().fit(self.classes_)
        try:
            return np.asarray(encoder.transform(y), dtype=np.int64)
        except ValueError as err:
            raise ValueError(f"{name}: {err}; the classes are {self.classes_!r} (give every label in partial_fit's "
                             "classes on its first call)") from err

    def _n_outputs(self, targets: np.ndarray) -> int:
        """One logit per class (two for a binary problem)."""
        return len(self.classes_)

    def _outputs_note(self, n_outputs: int) -> str:
        return f": one logit per class ({n_outputs} classes)"

    def _stratify(self, y: np.ndarray) -> np.ndarray | None:
        """Early stopping keeps the classes in proportion."""
        return y

    def _device_targets(self, y: np.ndarray, p: Placement) -> Any:
        """Encoded labels as int64 on the model's backend (what SoftmaxCrossEntropy takes)."""
        return host.from_numpy(y, p.xp, device=p.device, dtype=p.xp.int64)

    def _log_proba(self, X: Any, method: str) -> tuple[np.ndarray, Space]:
        """Log-softmax of the logits on the host, shifted by each row's maximum so nothing overflows."""
        logits, space = self._outputs(X, method)
        shifted = logits - logits.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)), space

    def predict_log_proba(self, X: Any) -> Any:
        """Log of the class probabilities (log-softmax of the logits, computed without overflow), columns in the
        order of ``classes_``."""
        log_proba, space = self._log_proba(X, "predict_log_proba")
        return like(log_proba, space)

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities (softmax of the logits; rows sum to 1), columns in the order of ``classes_``."""
        log_proba, space = self._log_proba(X, "predict_proba")
        return like(np.exp(log_proba), space)

    def decision_function(self, X: Any) -> Any:
        """The logits (n_samples, n_classes); for two classes the difference of the two logits (positive: the
        second class), as scikit-learn's binary classifiers."""
        logits, space = self._outputs(X, "decision_function")
        return like(logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits, space)

    def predict(self, X: Any) -> Any:
        """The most probable class of each row (argmax of ``predict_proba``), a label of ``classes_``."""
        log_proba, space = self._log_proba(X, "predict")
        return like(self.classes_[np.argmax(log_proba, axis=1)], space, labels=True)


class NeuralNetRegressor(RegressorMixin, _NeuralNet):
    """A portnn network trained with mean squared error on y of shape (n_samples,) or (n_samples, n_targets);
    ``predict`` returns the shape of the y it was fitted on.

    Parameters and fitted attributes as ``NeuralNetClassifier`` (without ``classes_``)."""

    _loss_type = MSE

    def fit(self, X: Any, y: Any) -> NeuralNetRegressor:
        """Train a new network on (X, y) for up to ``max_iter`` epochs."""
        return self._fit(X, y)

    def partial_fit(self, X: Any, y: Any) -> NeuralNetRegressor:
        """Train one more epoch on (X, y), continuing the model, its optimizer state and its shuffles (the first
        call builds the model)."""
        return self._partial_fit(X, y)

    def _multi_output(self) -> bool:
        """Targets may be (n_samples, n_targets)."""
        return True

    def _targets(self, y: Any, *, first: bool, classes: Any = None) -> np.ndarray:
        """Targets as a float (n_samples, n_targets) host array; the first fit remembers whether y was 1-D."""
        values = to_host(y)
        if values.ndim not in (1, 2):
            raise ValueError(f"{type(self).__name__}: y must have shape (n_samples,) or (n_samples, n_targets), got "
                             f"{values.shape}")
        if first:
            self._y_1d = values.ndim == 1
        values = values.reshape(-1, 1) if values.ndim == 1 else values
        return values if values.dtype.kind == "f" else values.astype(np.float64)

    def predict(self, X: Any) -> Any:
        """The network's predictions, shaped as the fitted y: (n_samples,) or (n_samples, n_targets)."""
        out, space = self._outputs(X, "predict")
        return like(out[:, 0] if self._y_1d else out, space)

    def __sklearn_tags__(self) -> Any:
        """As the classifier's, and 2-D targets are supported (scikit-learn's multi-output checks run)."""
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
