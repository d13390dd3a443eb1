"""Open-loop rollouts of latent dynamics: the context window and its padding in one place,
shared by the world-model envs, the comparison and training's evaluation."""

from __future__ import annotations

import torch

from cosmos_env.dynamics.model import LatentDynamics


class LatentContext:
    """The last K latents (B, K, C, h, w) and the K-1 actions between them (B, K-1, A).

    Built from k >= 1 initial latents: missing older rows repeat the first latent and
    carry zero actions (the padding training uses at episode starts); actions between
    caller-given frames are unknown and also zero.
    """

    def __init__(
        self,
        latents: torch.Tensor,
        context: int,
        action_dim: int,
        past_actions: torch.Tensor | None = None,
    ) -> None:
        """``past_actions`` (B, k-1, A): the actions between the k given latents, when known
        (a window of a recorded episode); None leaves them zero (unknown)."""
        b, k = latents.shape[:2]
        if k > context:
            latents = latents[:, -context:]
            if past_actions is not None:
                past_actions = past_actions[:, past_actions.shape[1] - (context - 1) :]
        pad = context - latents.shape[1]
        self.latents = torch.cat([latents[:, :1].expand(-1, pad, -1, -1, -1), latents], dim=1)
        self.actions = torch.zeros(b, context - 1, action_dim)
        if past_actions is not None and past_actions.shape[1]:
            n = past_actions.shape[1]
            if n != latents.shape[1] - 1:
                raise ValueError(f"{n} past actions for {latents.shape[1]} context latents")
            self.actions[:, context - 1 - n :] = past_actions

    def with_action(self, action: torch.Tensor) -> torch.Tensor:
        """The actions (B, K, A) for predicting the next latent after ``action`` (B, A)."""
        return torch.cat([self.actions, action[:, None]], dim=1)

    def push(self, latent: torch.Tensor, actions: torch.Tensor) -> None:
        """Append the new latent (B, C, h, w) that followed ``actions`` (B, K, A)."""
        self.latents = torch.cat([self.latents[:, 1:], latent[:, None]], dim=1)
        self.actions = actions[:, 1:]

    def set_rows(self, rows: torch.Tensor, other: LatentContext) -> None:
        """Rows ``rows`` (M,) take the M rows of ``other`` (partial resets). Out of place, so
        it works on tensors made under ``torch.inference_mode`` (the envs step in it)."""
        self.latents = self.latents.index_copy(0, rows, other.latents)
        self.actions = self.actions.index_copy(0, rows, other.actions)


@torch.no_grad()
def rollout(
    model: LatentDynamics,
    initial: torch.Tensor,
    actions: torch.Tensor,
    generator: torch.Generator | None = None,
    steps: int = 1,
    sampler: str = "euler",
    past_actions: torch.Tensor | None = None,
) -> torch.Tensor:
    """Predict latents (B, T, C, h, w) for actions (B, T, A) in [-1, 1] from initial raw
    latents (B, k, C, h, w) (and the k-1 actions between them, if known), open loop: the
    model's own predictions become its context."""
    ctx = LatentContext(initial, model.cfg.context, model.cfg.action_dim, past_actions)
    out = []
    for t in range(actions.shape[1]):
        step_actions = ctx.with_action(actions[:, t])
        nxt = model.predict_next(ctx.latents, step_actions, generator, steps, sampler)
        ctx.push(nxt, step_actions)
        out.append(nxt)
    return torch.stack(out, dim=1)
