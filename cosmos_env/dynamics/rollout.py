"""Open-loop rollouts of latent dynamics: the context window and its padding in one place,
shared by the world-model envs, the comparison and training's evaluation."""

from __future__ import annotations

import torch

from cosmos_env.dynamics.conditioning import TextIds
from cosmos_env.dynamics.decoder_memory import DecoderMemory
from cosmos_env.dynamics.diffusion.model import LatentDynamics


def _pad_front(x: torch.Tensor, length: int) -> torch.Tensor:
    """(B, k, ...) -> (B, length, ...): the last ``length`` rows, the first row repeated in
    front where there are fewer."""
    x = x[:, -length:]
    first = x[:, :1].expand(-1, length - x.shape[1], *x.shape[2:])
    return torch.cat([first, x], dim=1)


class LatentContext:
    """The last K latents (B, K, C, h, w) and the K-1 actions between them (B, K-1, A),
    for state-track models the K task states (B, K, S) that go with the latents, and for
    instruction models each row's instruction (``text``, token ids (B, L) padded to the
    model's length, so that rows can be replaced).

    Built from k >= 1 initial latents: missing older rows repeat the first latent (and
    state) and carry zero actions (the padding training uses at episode starts); actions
    between caller-given frames are unknown and also zero.
    """

    def __init__(
        self,
        latents: torch.Tensor,
        context: int,
        action_dim: int,
        past_actions: torch.Tensor | None = None,
        states: torch.Tensor | None = None,
        text: TextIds | None = None,
    ) -> None:
        """``past_actions`` (B, k-1, A): the actions between the k given latents, when known
        (a window of a recorded episode); None leaves them zero (unknown). ``states``
        (B, k, S) in world units, one per latent (state-track models)."""
        b, k = latents.shape[:2]
        if states is not None and states.shape[:2] != (b, k):
            raise ValueError(f"states of shape {tuple(states.shape)} for {k} latents of {b} rows")
        if k > context:
            latents = latents[:, -context:]
            if past_actions is not None:
                past_actions = past_actions[:, past_actions.shape[1] - (context - 1) :]
        if text is not None and text.ids.shape[0] != b:
            raise ValueError(f"{text.ids.shape[0]} instructions for {b} rows")
        self.text = text
        self.memory = DecoderMemory()  # what the backend carries between steps
        self.states = None if states is None else _pad_front(states.float(), context)
        self.latents = _pad_front(latents, context)
        self.actions = torch.zeros(b, context - 1, action_dim)
        if past_actions is not None and past_actions.shape[1]:
            n = past_actions.shape[1]
            if n != latents.shape[1] - 1:
                raise ValueError(f"{n} past actions for {latents.shape[1]} context latents")
            self.actions[:, context - 1 - n :] = past_actions

    def with_action(self, action: torch.Tensor) -> torch.Tensor:
        """The actions (B, K, A) for predicting the next latent after ``action`` (B, A)."""
        return torch.cat([self.actions, action[:, None]], dim=1)

    def with_state(self, state: torch.Tensor) -> torch.Tensor:
        """The states (B, K+1, S) of the context and of the next frame, whose state is
        ``state`` (B, S)."""
        return torch.cat([self.states, state[:, None]], dim=1)

    def push(
        self, latent: torch.Tensor, actions: torch.Tensor, state: torch.Tensor | None = None
    ) -> None:
        """Append the new latent (B, C, h, w) (and its state (B, S)) that followed
        ``actions`` (B, K, A)."""
        self.latents = torch.cat([self.latents[:, 1:], latent[:, None]], dim=1)
        self.actions = actions[:, 1:]
        if self.states is not None and state is not None:
            self.states = torch.cat([self.states[:, 1:], state[:, None].float()], dim=1)

    def set_rows(self, rows: torch.Tensor, other: LatentContext) -> None:
        """Rows ``rows`` (M,) take the M rows of ``other`` (partial resets). Out of place, so
        it works on tensors made under ``torch.inference_mode`` (the envs step in it)."""
        self.latents = self.latents.index_copy(0, rows, other.latents)
        self.memory.mark_stale(rows)
        self.actions = self.actions.index_copy(0, rows, other.actions)
        if self.states is not None and other.states is not None:
            self.states = self.states.index_copy(0, rows, other.states)
        if self.text is not None and other.text is not None:
            ids = self.text.ids.index_copy(0, rows, other.text.ids)
            self.text = TextIds(ids, self.text.mask.index_copy(0, rows, other.text.mask))


def initial_context(
    model: LatentDynamics,
    latents: torch.Tensor,
    past_actions: torch.Tensor | None = None,
    states: torch.Tensor | None = None,
    instructions: list[str] | None = None,
) -> LatentContext:
    """The context a rollout starts from: raw latents (B, k, C, h, w) (or token indices
    (B, k, h, w) for a token model), the k-1 actions
    between them if known, and for a state-track model their states (B, k, S) in world
    units; without states the probe reads them from the latents. An instruction model
    takes one instruction per row (each through the pre-guard; None: the null text)."""
    cfg = model.cfg
    track = getattr(cfg, "state_track", None) is not None  # token models (AR) have none
    if track and states is None:
        states = model.predict_state(latents.flatten(0, 1)).view(*latents.shape[:2], -1)
    if not track:
        states = None
    text = None
    if instructions is not None:
        if model.text is None:
            raise ValueError("this world model follows no instructions (dynamics.text=null)")
        text = TextIds(*model.text.token_ids(instructions, pad=True))
    if past_actions is not None:
        past_actions = model.read_actions(past_actions)
    return LatentContext(latents, cfg.context, cfg.action_dim, past_actions, states, text)


@torch.no_grad()
def step_context(
    model: LatentDynamics,
    ctx: LatentContext,
    action: torch.Tensor,
    generator: torch.Generator | None = None,
    steps: int = 1,
    sampler: str = "euler",
    guidance: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of every row: the next raw latent (B, C, h, w) and the task state (B, S)
    after ``action`` (B, A); ``ctx`` moves on by one frame. The state is the state track's
    for state-track models, else the probe's reading of the new latent. ``guidance``:
    classifier-free guidance (on the instruction, for instruction models)."""
    step_actions = ctx.with_action(model.read_actions(action))
    given = {"guidance": guidance} if guidance != 1.0 else {}
    if model.text is not None:
        given["text"] = ctx.text
    if model.keeps_decoder_memory:  # the AR model's KV cache, kept from step to step
        given["memory"] = ctx.memory
    if ctx.states is not None:
        state = model.predict_next_state(ctx.states, step_actions)
        states = ctx.with_state(state)
        latent = model.predict_next(
            ctx.latents, step_actions, generator, steps, sampler, states=states, **given
        )
    else:
        latent = model.predict_next(ctx.latents, step_actions, generator, steps, sampler, **given)
        state = model.predict_state(latent)
    ctx.push(latent, step_actions, state)
    return latent, state


@torch.no_grad()
def rollout(
    model: LatentDynamics,
    initial: torch.Tensor,
    actions: torch.Tensor,
    generator: torch.Generator | None = None,
    steps: int = 1,
    sampler: str = "euler",
    past_actions: torch.Tensor | None = None,
    initial_states: torch.Tensor | None = None,
    instructions: list[str] | None = None,
    guidance: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predict latents (B, T, C, h, w) and task states (B, T, S) for actions (B, T, A) in
    [-1, 1] from initial raw latents (B, k, C, h, w) (with the k-1 actions between them,
    if known, their states (B, k, S), if known, and one instruction per row for an
    instruction model), open loop: the model's own predictions become its context."""
    ctx = initial_context(model, initial, past_actions, initial_states, instructions)
    latents, states = [], []
    for t in range(actions.shape[1]):
        latent, state = step_context(model, ctx, actions[:, t], generator, steps, sampler, guidance)
        latents.append(latent)
        states.append(state)
    return torch.stack(latents, dim=1), torch.stack(states, dim=1)
