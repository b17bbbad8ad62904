"""What the article reports, so that notebooks can put our numbers beside it."""

from __future__ import annotations

# Mean training loss (MSE per pixel) after each of 10 epochs, Adam, batch 128.
ARTICLE_LOSSES: dict[int, list[float]] = {
    8: [0.0514, 0.0380, 0.0322, 0.0304, 0.0293, 0.0286, 0.0281, 0.0277, 0.0273, 0.0270],
    4: [0.0612, 0.0509, 0.0481, 0.0467, 0.0459, 0.0452, 0.0447, 0.0442, 0.0438, 0.0435],
}


def article_losses(latent_dim: int, epochs: int | None = None) -> list[float] | None:
    """The article's per-epoch losses for this code size (first ``epochs`` of them),
    or ``None`` when the article reports no run with that size or that many epochs."""
    losses = ARTICLE_LOSSES.get(latent_dim)
    if losses is None or (epochs is not None and epochs > len(losses)):
        return None
    return losses[:epochs] if epochs is not None else list(losses)
