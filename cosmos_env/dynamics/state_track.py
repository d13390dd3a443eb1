"""The task-state half of a world model, shared by both backends.

A learned state dynamics (``StateDynamics``, with the end-effector integrator, contact
features and the gripper-frame head where the StateSpec's roles switch them on) carries
the task state from step to step; the frame generator (the diffusion denoiser or the AR
transformer) is conditioned on it, and reward and success are the world's functions (or
the outcome heads) of it. `StateTrackModel` owns those parts, the state standardisation
and the keypoint maps, so `LatentDynamics` and `TokenDynamics` carry the same track with
the same parameter names: a refit, the envs and the planners treat both alike.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cosmos_env.dynamics.gripper_frame import GripperFrameHead
from cosmos_env.dynamics.keypoints import keypoint_maps
from cosmos_env.dynamics.outcome_heads import OutcomeHeads
from cosmos_env.dynamics.state_dynamics import (
    StateDynamics,
    contact_feature_dim,
    contact_features,
    integrate_end_effector,
)
from cosmos_env.dynamics.state_features import config_state_spec

# Standardised states are clipped here before they condition anything: a probe reading far
# outside the training range must not blow up the embeddings.
STATE_CLIP = 8.0


class StateTrackModel(nn.Module):
    """Base of the world models: the state standardisation (``state_mean``/``state_std``,
    (S,)), the optional state track and outcome heads, built from a model config with
    ``state_dim``, ``action_dim``, ``context``, ``action_low``/``action_high``,
    ``state_track``, ``outcome_heads``, ``keypoint_channels`` and ``state_spec``.

    Subclasses call ``_build_state_parts(cfg)`` in their ``__init__``. States cross the
    public methods in world units, actions in [-1, 1].
    """

    # Whether ``predict_next`` takes a rollout's `DecoderMemory` (``memory=``) and keeps
    # its decoding state there between steps (the AR model's KV cache).
    keeps_decoder_memory = False

    def _build_state_parts(self, cfg) -> None:
        s = cfg.state_dim
        self.register_buffer("state_mean", torch.zeros(s))
        self.register_buffer("state_std", torch.ones(s))
        self.spec = config_state_spec(cfg) if s else None  # a base has no state
        self.outcome = None
        if cfg.outcome_heads:
            self.outcome = OutcomeHeads(s, cfg.action_dim, cfg.outcome_heads.width)
        self._build_state_track(cfg)
        self._build_frame_head(cfg)
        self._build_integrator(cfg)
        if cfg.keypoint_channels:
            keypoints = cfg.state_track.keypoints
            self.keypoint_slots = [self.spec.position_slot(n, "keypoints") for n in keypoints.slots]
            # From the config, not the weights: a release stores parameters in float16.
            projection = torch.tensor(keypoints.camera, dtype=torch.float32).view(3, 4)
            self.register_buffer("projection", projection, persistent=False)

    def _build_state_track(self, cfg) -> None:
        """The state MLP, with the contact features' slots when the track has them."""
        track, s = cfg.state_track, cfg.state_dim
        self.state_dynamics = None
        self.contact_slots: list[slice] = []
        self.ee_slot = track.integrator.slot if track and track.integrator else ""
        if not track:
            return
        relative = track.contact.slots if track.contact else []
        self.contact_slots = [self.spec.position_slot(n, "state_track.contact") for n in relative]
        if track.contact:
            anchor = track.contact.anchor or self.ee_slot
            self.contact_anchor = self.spec.position_slot(anchor, "state_track.contact.anchor")
        extra = contact_feature_dim(len(self.contact_slots), cfg.context)
        self.state_dynamics = StateDynamics(
            s, cfg.action_dim, cfg.context, track.width, extra if self.contact_slots else 0
        )
        self.register_buffer("state_delta_std", torch.ones(s))

    def _build_frame_head(self, cfg) -> None:
        track = cfg.state_track
        self.frame_head = None
        if not (track and track.frame_head):
            return
        head = track.frame_head
        self.frame_head = GripperFrameHead(
            head.objects,
            track.contact.slots,
            self.ee_slot,
            head.quat,
            cfg.context,
            cfg.action_dim,
            head.width,
            self.spec,
        )
        planar = [self.spec.position_slot(f"{n}_pos", "frame_head") for n in head.objects]
        self.frame_dims = [d for index in planar for d in (index.start, index.start + 1)]

    def _build_integrator(self, cfg) -> None:
        """The end-effector slot the actions move, and the ranges that scale and clip it."""
        s = cfg.state_dim
        if not self.ee_slot:
            return
        if not (cfg.action_low and cfg.action_high):
            raise ValueError(
                f"the integrator of slot {self.ee_slot!r} needs the actions' physical "
                "range (dynamics.action_low / action_high; train-dynamics fills them in "
                "from the store's action spec)"
            )
        self.ee_index = self.spec.position_slot(self.ee_slot, "state_track.integrator")
        ee = self.spec.end_effector
        self.ee_channels = list(ee.action_delta) if ee and ee.action_delta else [0, 1, 2]
        self.register_buffer("state_min", torch.zeros(s))
        self.register_buffer("state_max", torch.zeros(s))
        # From the config, not the weights, as the camera is.
        self.register_buffer("action_low", torch.tensor(cfg.action_low), persistent=False)
        self.register_buffer("action_high", torch.tensor(cfg.action_high), persistent=False)

    def read_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """The actions (..., A) in [-1, 1] this model reads: all of them, or none
        ((..., 0)) for an action-free model (``actions=False``: instruction->video)."""
        return actions if self.cfg.action_dim else actions[..., :0]

    def set_state_normalisation(
        self,
        states: torch.Tensor,
        min_state_std: float = 1e-3,
        state_changes: torch.Tensor | None = None,
    ) -> None:
        """Per-dim stats of the training states (N, S) (constant dims keep a floor so they
        standardise to 0, not inf, and their range bounds the end-effector integrator) and,
        for the state track, of one-step state changes (M, S) in world units."""
        if states.shape[-1]:  # a base has no state
            self.state_mean.copy_(states.mean(0))
            self.state_std.copy_(states.std(0).clamp_min(min_state_std))
        if self.ee_slot:
            self.state_min.copy_(states.min(0).values)
            self.state_max.copy_(states.max(0).values)
        if self.state_dynamics is not None:
            if state_changes is None:
                raise ValueError("a state-track model needs state_changes for its normalisation")
            self.state_delta_std.copy_((state_changes / self.state_std).std(0).clamp_min(1e-3))

    def keypoint_maps(self, states: torch.Tensor) -> torch.Tensor | None:
        """Keypoint maps (B, M, h, w) of world-unit states (B, F, S) (M = F x keypoints);
        None without them."""
        if not self.cfg.keypoint_channels:
            return None
        sigma = self.cfg.state_track.keypoints.sigma
        return keypoint_maps(
            states, self.projection, self.keypoint_slots, self.cfg.latent_size, sigma
        )

    def standardise_state(self, state: torch.Tensor) -> torch.Tensor:
        """World-unit states (..., S) -> standardised, clipped to +-STATE_CLIP."""
        return ((state - self.state_mean) / self.state_std).clamp(-STATE_CLIP, STATE_CLIP)

    def noisy_conditioning_states(
        self,
        context_states: torch.Tensor,
        target_state: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Training's conditioning states (B, K+1, S), standardised: the context's (B, K, S)
        and the target's (B, S), world units, plus noise of a random std up to
        ``state_track.noise`` per window, because at inference they come from the track."""
        cond = torch.cat(
            [self.standardise_state(context_states), self.standardise_state(target_state)[:, None]],
            dim=1,
        )
        amount = self.cfg.state_track.noise * torch.rand(len(cond), 1, 1, generator=generator)
        return cond + amount * torch.randn(cond.shape, generator=generator)

    def _state_change(self, context_states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The state track's change (B, S) from the last context state, in units of
        ``state_delta_std`` standardised units: the MLP's output, plus the end-effector
        integrator's exact part when the track has one."""
        extra = None
        if self.contact_slots:
            extra = contact_features(context_states, self.contact_anchor, self.contact_slots)
        change = self.state_dynamics(self.standardise_state(context_states), actions, extra)
        change = change.float()
        if self.frame_head is not None:  # these objects' planar motion comes from the head
            motion = self.frame_head(context_states, actions).flatten(1)  # (B, 2P) metres
            dims = self.frame_dims
            scale = self.state_std[dims] * self.state_delta_std[dims]
            change = change.clone()
            change[:, dims] = motion / scale
        if self.ee_slot:
            ch = self.ee_channels
            moved = integrate_end_effector(
                context_states[:, -1],
                actions[:, -1, ch],
                self.ee_index,
                self.action_low[ch],
                self.action_high[ch],
                self.state_min,
                self.state_max,
            )
            change = change + moved / self.state_std / self.state_delta_std
        return change

    def state_loss(
        self, context_states: torch.Tensor, actions: torch.Tensor, target_state: torch.Tensor
    ) -> torch.Tensor:
        """The state track's loss: squared error of the predicted change from the context's
        last state (B, K, S), world units, after actions (B, K, A), to ``target_state``
        (B, S), in units of each dim's typical one-step change. Always float32, also under
        autocast: the track runs in float32 (``predict_next_state``) and trains as it runs."""
        with torch.autocast("cpu", enabled=False):
            context_states, actions = context_states.float(), self.read_actions(actions).float()
            target_state = target_state.float()
            last = self.standardise_state(context_states[:, -1])
            change = (self.standardise_state(target_state) - last) / self.state_delta_std
            return (self._state_change(context_states, actions) - change).pow(2).mean()

    def outcome_loss(
        self,
        context_states: torch.Tensor,
        actions: torch.Tensor,
        target_state: torch.Tensor,
        targets: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """The outcome heads' loss on the step from the context's last state (B, K, S),
        world units, by its action (actions (B, K, A)) to ``target_state`` (B, S), against
        the store's columns of the row arrived at (``targets``: OUTCOMES -> (B,))."""
        with torch.autocast("cpu", enabled=False):
            before = self.standardise_state(context_states[:, -1].float())
            after = self.standardise_state(target_state.float())
            action = self.read_actions(actions[:, -1]).float()
            return self.outcome.loss(before, action, after, targets)

    @torch.no_grad()
    def predict_outcome(
        self, state: torch.Tensor, action: torch.Tensor, next_state: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Reward (B,) and termination / success probabilities (B,) of the step from
        ``state`` (B, S) by ``action`` (B, A) in [-1, 1] to ``next_state`` (B, S), world
        units (outcome heads)."""
        if self.outcome is None:
            raise ValueError("this model has no outcome heads (dynamics.outcome_heads=null)")
        with torch.autocast("cpu", enabled=False):
            before, after = (
                self.standardise_state(state.float()),
                self.standardise_state(next_state.float()),
            )
            return self.outcome(before, self.read_actions(action).float(), after)

    @torch.no_grad()
    def predict_next_state(
        self, context_states: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """The next task state (B, S) in world units from the context's states (B, K, S),
        oldest first, and the actions (B, K, A) in [-1, 1] taken after each (state track)."""
        if self.state_dynamics is None:
            raise ValueError("this model has no state track (dynamics.state_track=null)")
        # Always float32, also under the envs' bf16 autocast: the track is cheap, it is
        # integrated over the whole episode, and planners must see the env's exact states.
        with torch.autocast("cpu", enabled=False):
            context_states, actions = context_states.float(), self.read_actions(actions).float()
            ctx = self.standardise_state(context_states)
            change = self._state_change(context_states, actions) * self.state_delta_std
        state = (ctx[:, -1] + change) * self.state_std + self.state_mean
        if self.ee_slot:  # never outside the states the model was trained on
            state = torch.minimum(torch.maximum(state, self.state_min), self.state_max)
        return state


def extra_track_loss(
    model: StateTrackModel,
    batcher,
    state_batch: int,
    outcome_weight: float,
    rng: np.random.Generator,
) -> torch.Tensor:
    """The state track's and the outcome heads' losses on extra state-only windows of
    ``batcher`` (a ``WindowBatcher``; cheap: no latents), ``state_batch`` of them (at
    least 256 for the heads), the heads' weighted by ``outcome_weight``."""
    total = torch.zeros(())
    size = max(state_batch, 256 if model.outcome is not None else 0)
    if not size or (model.state_dynamics is None and model.outcome is None):
        return total
    extra = batcher.sample_states(size, rng)
    targets = extra.pop("outcomes")
    if state_batch and model.state_dynamics is not None:
        total = total + model.state_loss(**extra)
    if model.outcome is not None:
        total = total + outcome_weight * model.outcome_loss(**extra, targets=targets)
    return total
