"""portnn.generate: greedy decoding equals a step-by-step argmax loop over the cropped context on every backend;
samples (Gumbel-max over the counter-based generator) are the same ids on every backend and device; temperature
towards 0 and top_k=1 give the greedy ids; top_k keeps the k largest; the per-token step is traced once under
jax.jit; bad arguments are refused naming them, before any work."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np
import pytest

import portnn
from portnn import backends
from portnn.data.gpt import gpt
from portnn.nn.dense import Dense

VOCAB = 3


def tiny_gpt(seed: int = 1, length: int = 8, causal: bool = True) -> portnn.Sequential:
    """A one-block GPT over 3 ids, contexts of at most ``length``; ``causal`` False: attention sees every step."""
    net = gpt(VOCAB, length, 16, 2, 1, 0.1, seed)
    if not causal:
        block = net.layers[3]
        assert isinstance(block, portnn.Residual)
        attention = block.layers[1]
        assert isinstance(attention, portnn.MultiHeadAttention)
        attention.causal = False
    return net


def gru_lm(seed: int = 2) -> portnn.Sequential:
    """A recurrent language model with no PositionalEmbedding: any context length."""
    return portnn.Sequential(portnn.Embedding(5, 8), portnn.GRU(8, 8, return_sequences=True), portnn.Dense(8, 5),
                             seed=seed)


def prompts(n: int = 6, t: int = 5, vocab: int = VOCAB) -> np.ndarray:
    return np.random.default_rng(0).integers(0, vocab, (n, t))


def argmax_loop(net: portnn.Sequential, ids: np.ndarray, steps: int, length: int | None, case: Any) -> np.ndarray:
    """The reference: predict on the last ``length`` ids (all without one), append the argmax of the last step."""
    for _ in range(steps):
        context = ids if length is None else ids[:, -length:]
        logits = portnn.to_numpy(net.predict(case.asarray(context, dtype=None), compile=False))
        ids = np.concatenate([ids, np.argmax(logits[:, -1, :], axis=1)[:, None]], axis=1)
    return ids


@pytest.mark.parametrize(("make", "length"), [(tiny_gpt, 8), (gru_lm, None)], ids=["gpt", "gru"])
def test_greedy_equals_a_step_by_step_argmax_loop(case, make, length) -> None:
    net = make().to(case.xp, case.device, case.dtype_name)
    vocab = net.layers[0].num_embeddings
    prompt = prompts(vocab=vocab)
    placed = case.asarray(prompt, dtype=None)
    out = portnn.generate(net, placed, 7)  # 5 + 7 > 8: the context is cropped
    assert array_api_compat.array_namespace(out) is array_api_compat.array_namespace(case.asarray(prompt))
    assert array_api_compat.device(out) == case.device
    got = portnn.to_numpy(out)
    assert got.shape == (6, 12)
    assert out.dtype == placed.dtype  # the prompt's integer dtype (int32 in JAX at its defaults)
    np.testing.assert_array_equal(got[:, :5], prompt)
    np.testing.assert_array_equal(got, argmax_loop(net, prompt, 7, length, case))


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_a_non_causal_model_reads_exactly_the_last_ids(numpy64, backend: str) -> None:
    if not backends.get(backend).installed():
        pytest.skip(f"{backend} is not installed")
    xp, device = backends.load(backend)
    net = tiny_gpt(causal=False).to(xp, device)
    out = portnn.to_numpy(portnn.generate(net, xp.asarray(prompts()), 6))  # jax: compiled, one trace per width
    np.testing.assert_array_equal(out, argmax_loop(net.to("numpy"), prompts(), 6, 8, numpy64))


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_samples_are_the_same_ids_on_every_backend(case, compile) -> None:
    if compile and case.backend.compile.get("method") != "jax.jit":
        pytest.skip("compiled generation is checked on jax.jit")
    net = tiny_gpt().to(case.xp, case.device, case.dtype_name)
    out = portnn.generate(net, case.asarray(prompts(8, 3), dtype=None), 9, greedy=False, seed=5, compile=compile)
    here = portnn.to_numpy(out)
    reference = tiny_gpt().to("numpy", None, case.dtype_name)
    expected = portnn.to_numpy(portnn.generate(reference, prompts(8, 3), 9, greedy=False, seed=5))
    np.testing.assert_array_equal(here, expected)
    greedy = portnn.to_numpy(portnn.generate(reference, prompts(8, 3), 9))
    assert np.mean(here != greedy) > 0.1  # an untrained model's samples are not its argmax
    other = portnn.to_numpy(portnn.generate(reference, prompts(8, 3), 9, greedy=False, seed=6))
    assert np.mean(other != expected) > 0.1  # another seed, other samples


def test_low_temperature_and_top_k_1_are_greedy(numpy64) -> None:
    net = gru_lm().to("numpy")
    greedy = portnn.to_numpy(portnn.generate(net, prompts(16, 4, 5), 10))
    cold = portnn.to_numpy(portnn.generate(net, prompts(16, 4, 5), 10, greedy=False, temperature=1e-6, seed=1))
    top1 = portnn.to_numpy(portnn.generate(net, prompts(16, 4, 5), 10, greedy=False, top_k=1, seed=1))
    warm = portnn.to_numpy(portnn.generate(net, prompts(16, 4, 5), 10, greedy=False, temperature=1.0, seed=1))
    np.testing.assert_array_equal(cold, greedy)
    np.testing.assert_array_equal(top1, greedy)
    assert np.mean(warm != greedy) > 0.1


def test_top_k_samples_only_among_the_k_largest_logits(numpy64) -> None:
    net = gru_lm().to("numpy")
    out = portnn.to_numpy(portnn.generate(net, prompts(32, 3, 5), 8, greedy=False, top_k=2, temperature=5.0))
    logits = portnn.to_numpy(net.predict(out[:, :-1]))[:, 2:, :]  # the logits each generated id was drawn from
    chosen = out[:, 3:]
    rank = np.sum(logits > np.take_along_axis(logits, chosen[:, :, None], axis=2), axis=2)  # 0: the largest
    assert rank.max() == 1  # never below the second largest ...
    assert np.mean(rank == 1) > 0.2  # ... and often the second (temperature 5 flattens the distribution)


def test_the_token_step_is_traced_once_under_jax_jit(monkeypatch: pytest.MonkeyPatch) -> None:
    if not backends.get("jax").installed():
        pytest.skip("jax is not installed")
    xp, device = backends.load("jax")
    calls = {"n": 0}
    forward = Dense.forward

    def counted(self, params, x, ctx):
        calls["n"] += 1  # runs in Python only while jax traces
        return forward(self, params, x, ctx)

    monkeypatch.setattr(Dense, "forward", counted)
    seen = []
    for steps in (2, 9):
        net = tiny_gpt().to(xp, device, "float32")
        calls["n"] = 0
        portnn.generate(net, xp.asarray(prompts(4, 3)), steps, greedy=False, compile=True)
        seen.append(calls["n"])
        portnn.generate(net, xp.asarray(prompts(4, 3)), steps, greedy=False, compile=True)  # cached: no new trace
        assert calls["n"] == seen[-1]
    assert seen[0] == seen[1] <= 2 * 3  # the same traces for 2 and 9 steps: three Dense layers, traced once or twice
    net = tiny_gpt().to("numpy")
    calls["n"] = 0
    portnn.generate(net, prompts(4, 3), 9)
    assert calls["n"] == 9 * 3  # eager: every step runs the layers


def test_zero_steps_return_the_prompt_and_a_long_prompt_is_cropped(numpy64) -> None:
    net = tiny_gpt(length=4).to("numpy")
    np.testing.assert_array_equal(portnn.to_numpy(portnn.generate(net, prompts(), 0)), prompts())
    long = prompts(3, 9)
    out = portnn.to_numpy(portnn.generate(net, long, 3))
    np.testing.assert_array_equal(out, argmax_loop(net, long, 3, 4, numpy64))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's overflow warning
def test_logits_that_overflow_are_an_error() -> None:
    net = portnn.Sequential(portnn.Embedding(5, 8), portnn.Dense(8, 5)).to("numpy")
    state = net.state_dict()
    net.load_state_dict({k: v * 1e200 for k, v in state.items()})  # finite weights, products of 1e400
    with pytest.raises(FloatingPointError, match="generate: the model's logits are not finite"):
        portnn.generate(net, prompts(2, 3, 5), 2)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"steps": -1}, "generate: steps must be an int >= 0, got -1"),
    ({"steps": 2.0}, "generate: steps must be an int >= 0, got 2.0"),
    ({"greedy": 1}, "generate: greedy must be True or False, got 1"),
    ({"temperature": 0.0}, r"generate: temperature must be a finite number > 0, got 0.0"),
    ({"temperature": float("nan")}, "generate: temperature must be a finite number > 0, got nan"),
    ({"top_k": 0}, "generate: top_k must be an int >= 1 or None, got 0"),
    ({"top_k": 4}, r"generate: top_k must be at most the vocabulary size 3, got 4"),
    ({"seed": -2}, "generate: seed must be an int >= 0, got -2"),
    ({"compile": "yes"}, "generate: compile must be one of"),
    ({"prompt_ids": np.zeros((2, 3))}, r"prompt_ids must be integer token ids of shape \(N, T >= 1\), got shape "
                                       r"\(2, 3\) and dtype float64"),
    ({"prompt_ids": np.zeros(3, dtype=np.int64)}, r"prompt_ids must be integer token ids .* got shape \(3,\)"),
    ({"prompt_ids": np.zeros((2, 0), dtype=np.int64)}, r"got shape \(2, 0\)"),
    ({"prompt_ids": np.array([[0, 1, 3]])}, r"token ids must lie in \[0, 3\), got id 3"),
    ({"model": "gpt"}, "generate: model must be a portnn Sequential"),
])
def test_bad_arguments_are_refused_naming_them(kwargs: dict[str, Any], message: str) -> None:
    net = tiny_gpt()
    args = {"model": net, "prompt_ids": prompts(), "steps": 2, **kwargs}
    with pytest.raises((TypeError, ValueError), match=message):
        portnn.generate(args.pop("model"), args.pop("prompt_ids"), args.pop("steps"), **args)
    assert net.placement is None  # refused before the model was placed


def test_a_model_without_next_id_logits_is_refused() -> None:
    net = portnn.Sequential(portnn.Embedding(4, 8), portnn.GRU(8, 8), portnn.Dense(8, 4))  # (N, T) -> (N, 4)
    with pytest.raises(ValueError, match=r"generate: the model maps ids of shape \(2, 4\) to shape \(2, 4\); it "
                                         r"needs next-id logits of shape \(N, T, V\)"):
        portnn.generate(net, prompts(2, 3, 4), 2)
