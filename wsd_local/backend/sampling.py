"""Choosing the next token from one row of logits, with its log-probability."""

from __future__ import annotations

import numpy as np


def log_norm(logits: np.ndarray) -> float:
    """log Σ exp(logits): the softmax normaliser (float64 accumulation for stability)."""
    peak = float(logits.max())
    return peak + float(np.log(np.exp(logits - peak, dtype=np.float32).sum(dtype=np.float64)))


def log_softmax_at(logits: np.ndarray, token: int) -> float:
    """log P(token) from raw logits."""
    return float(logits[token]) - log_norm(logits)


def top_two(logits: np.ndarray) -> tuple[int, float]:
    """The best token and its logit gap to the runner-up, in two argmax passes (a full
    partition of Gemma's 262k logits costs ten times more, on every generated token)."""
    first = int(logits.argmax())
    best = logits[first]
    logits[first] = -np.inf  # the row is llama.cpp's scratch buffer; restored below
    second = float(logits.max())
    logits[first] = best
    return first, float(best) - second


def choose(logits: np.ndarray, temperature: float, top_p: float,
           rng: np.random.Generator) -> tuple[int, float, float, float]:
    """Pick a token. Returns (token, its log-probability under the model, top-2 margin,
    the log-probability of the most likely token).

    Log-probabilities are the model's own (temperature 1), so traces compare across
    sampling settings; greedy decoding takes the argmax (then both are the same).
    """
    first, margin = top_two(logits)
    if temperature <= 0.0:
        best = log_softmax_at(logits, first)
        return first, best, margin, best
    scaled = logits.astype(np.float64) / temperature
    scaled -= scaled.max()
    probs = np.exp(scaled)
    probs /= probs.sum()
    if top_p < 1.0:
        order = np.argsort(-probs)
        cumulative = np.cumsum(probs[order])
        keep = order[: int(np.searchsorted(cumulative, top_p)) + 1]
        mask = np.zeros_like(probs)
        mask[keep] = probs[keep]
        probs = mask / mask.sum()
    token = int(rng.choice(len(probs), p=probs))
    z = log_norm(logits)  # one pass over the vocabulary for both log-probabilities
    return token, float(logits[token]) - z, margin, float(logits[first]) - z
