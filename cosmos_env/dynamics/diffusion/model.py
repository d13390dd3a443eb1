"""LatentDynamics: the diffusion denoiser, the state probe and the data standardisation,
in one module so one ``model.safetensors`` holds everything the world model needs besides
its tokenizer."""

from __future__ import annotations

import torch
from torch import nn

from cosmos_env.dynamics.diffusion.config import DiffusionConfig
from cosmos_env.dynamics.diffusion.denoiser import Denoiser
from cosmos_env.dynamics.diffusion.samplers import SAMPLERS, get_sampler, guided, karras_sigmas
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
from cosmos_env.dynamics.state_probe import StateProbe
from cosmos_env.machine import CXX_COMPILERS, has_cxx_compiler

# Standardised states are clipped here before they condition anything: a probe reading far
# outside the training range must not blow up the embeddings.
STATE_CLIP = 8.0


class LatentDynamics(nn.Module):
    """Predicts the next tokenizer latent from past latents and actions, and reads the task
    state from a latent. Public tensors are raw tokenizer latents (B, [K,] C, h, w) and
    actions in [-1, 1]; standardisation happens inside with the training data's stats.

    The diffusion runs on the change from the last context latent to the next one (scaled
    to unit std): most of a tabletop frame does not move, so copying the last frame is
    built in and the network spends its capacity on the arm and the objects.

    With a ``cfg.state_track`` it also carries the task state: ``predict_next_state`` steps
    it with a learned state dynamics, and ``predict_next`` draws the frame that goes with
    it (states (B, K+1, S): the context's and the next frame's).
    """

    samplers = tuple(SAMPLERS)  # what ``predict_next`` samples with

    def __init__(self, cfg: DiffusionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c, s = cfg.latent_channels, cfg.state_dim
        self.denoiser = Denoiser(cfg)
        # A world with no state (an action-free base) has no probe.
        self.probe = StateProbe(c, cfg.latent_size, s, cfg.probe_width) if s else None
        for name, size, value in (
            ("latent_mean", c, 0.0),
            ("latent_std", c, 1.0),
            ("delta_std", c, 1.0),
            ("state_mean", s, 0.0),
            ("state_std", s, 1.0),
        ):
            self.register_buffer(name, torch.full((size,), value))
        self.spec = config_state_spec(cfg) if s else None  # a base has no state
        self.outcome = None
        if cfg.outcome_heads:
            self.outcome = OutcomeHeads(s, cfg.action_dim, cfg.outcome_heads.width)
        self._build_state_track()
        self._build_frame_head()
        self._build_integrator()
        if cfg.keypoint_channels:
            keypoints = cfg.state_track.keypoints
            self.keypoint_slots = [self.spec.position_slot(n, "keypoints") for n in keypoints.slots]
            # From the config, not the weights: the release stores parameters in float16.
            projection = torch.tensor(keypoints.camera, dtype=torch.float32).view(3, 4)
            self.register_buffer("projection", projection, persistent=False)

    def _build_state_track(self) -> None:
        """The state MLP, with the contact features' slots when the track has them."""
        cfg, track, s = self.cfg, self.cfg.state_track, self.cfg.state_dim
        self.state_dynamics = None
        self.contact_slots: list[slice] = []
        self.ee_slot = track.integrator.slot if track and track.integrator else ""
        if not track:
            return
        relative = track.contact.slots if track.contact else []
        self.contact_slots = [self.spec.position_slot(n, "state_track.contact") for n in relative]
        extra = contact_feature_dim(len(self.contact_slots), cfg.context)
        self.state_dynamics = StateDynamics(
            s, cfg.action_dim, cfg.context, track.width, extra if self.contact_slots else 0
        )
        self.register_buffer("state_delta_std", torch.ones(s))

    def _build_frame_head(self) -> None:
        cfg, track = self.cfg, self.cfg.state_track
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

    def _build_integrator(self) -> None:
        """The end-effector slot the actions move, and the ranges that scale and clip it."""
        cfg, s = self.cfg, self.cfg.state_dim
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

    def set_normalisation(
        self,
        latents: torch.Tensor,
        next_latents: torch.Tensor,
        states: torch.Tensor,
        min_state_std: float = 1e-3,
        state_changes: torch.Tensor | None = None,
    ) -> None:
        """Per-channel stats of latents (N, C, h, w) and of their changes to the following
        latents (N, C, h, w); per-dim state stats from states (N, S) (constant dims keep a
        floor so they standardise to 0, not inf, and their range bounds the end-effector
        integrator) and, for the state track, of one-step state changes (M, S) in world
        units."""
        self.latent_mean.copy_(latents.mean(dim=(0, 2, 3)))
        self.latent_std.copy_(latents.std(dim=(0, 2, 3)).clamp_min(1e-6))
        delta = self.standardise(next_latents) - self.standardise(latents)
        self.delta_std.copy_(delta.std(dim=(0, 2, 3)).clamp_min(1e-6))
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

    def standardise(self, latent: torch.Tensor) -> torch.Tensor:
        """Raw latent (..., C, h, w) -> unit-std latent."""
        return (latent - self.latent_mean[:, None, None]) / self.latent_std[:, None, None]

    def unstandardise(self, latent: torch.Tensor) -> torch.Tensor:
        return latent * self.latent_std[:, None, None] + self.latent_mean[:, None, None]

    def compile_network(self) -> None:
        """Compile the denoiser's network in place with ``torch.compile`` (inductor): the
        first pass at each input shape pays a one-off compile, later ones run fused kernels.
        Weights, state_dict and outputs (up to float rounding) are unchanged. The generated
        code uses the vector width of the ISA ATen runs: with ATen held to AVX2 on an
        AVX-512 CPU (``ATEN_CPU_CAPABILITY=avx2``) inductor's own choice, 512 bits, gave
        NaN at 64 sub-envs."""
        if not has_cxx_compiler():
            raise RuntimeError(
                "compile=True builds C++ kernels (torch.compile's inductor) and found no C++ "
                f"compiler ({', '.join(CXX_COMPILERS)}): install one (apt install g++) or "
                "leave compile off"
            )
        capability = torch.backends.cpu.get_cpu_capability()
        options = {"cpp.simdlen": 256} if capability == "AVX2" else None
        self.denoiser.net.compile(options=options)

    def keypoint_maps(self, states: torch.Tensor) -> torch.Tensor | None:
        """Keypoint maps (B, M, h, w) of world-unit states (B, K+1, S); None without them."""
        if not self.cfg.keypoint_channels:
            return None
        sigma = self.cfg.state_track.keypoints.sigma
        return keypoint_maps(
            states, self.projection, self.keypoint_slots, self.cfg.latent_size, sigma
        )

    def standardise_state(self, state: torch.Tensor) -> torch.Tensor:
        """World-unit states (..., S) -> standardised, clipped to +-STATE_CLIP."""
        return ((state - self.state_mean) / self.state_std).clamp(-STATE_CLIP, STATE_CLIP)

    def _state_change(self, context_states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The state track's change (B, S) from the last context state, in units of
        ``state_delta_std`` standardised units: the MLP's output, plus the end-effector
        integrator's exact part when the track has one."""
        extra = None
        if self.contact_slots:
            extra = contact_features(context_states, self.ee_index, self.contact_slots)
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

    def losses(
        self,
        context: torch.Tensor,
        actions: torch.Tensor,
        target: torch.Tensor,
        target_state: torch.Tensor,
        generator: torch.Generator | None = None,
        context_states: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Training losses on raw latents: context (B, K, C, h, w), actions (B, K, A),
        target (B, C, h, w) and its state (B, S); a state-track model also takes the
        context's states (B, K, S) and adds a "state" loss."""
        target_std, context_std = self.standardise(target), self.standardise(context)
        delta = (target_std - context_std[:, -1]) / self.delta_std[:, None, None]
        state_std = (target_state - self.state_mean) / self.state_std
        losses = {"probe": target.new_zeros(())}
        if self.probe is not None:
            losses["probe"] = (self.probe(target_std).float() - state_std).pow(2).mean()
        cond = maps = None
        if self.state_dynamics is not None:
            if context_states is None:
                raise ValueError("a state-track model trains on context_states (B, K, S)")
            ctx_states = self.standardise_state(context_states)
            losses["state"] = self.state_loss(context_states, actions, target_state)
            # Conditioning states get noise: at inference they come from the state track.
            cond = torch.cat([ctx_states, self.standardise_state(target_state)[:, None]], dim=1)
            amount = self.cfg.state_track.noise * torch.rand(len(cond), 1, 1, generator=generator)
            cond = cond + amount * torch.randn(cond.shape, generator=generator)
            maps = self.keypoint_maps(cond * self.state_std + self.state_mean)
        losses["diffusion"] = self.denoiser.loss(delta, context_std, actions, generator, cond, maps)
        return losses

    def state_loss(
        self, context_states: torch.Tensor, actions: torch.Tensor, target_state: torch.Tensor
    ) -> torch.Tensor:
        """The state track's loss: squared error of the predicted change from the context's
        last state (B, K, S), world units, after actions (B, K, A), to ``target_state``
        (B, S), in units of each dim's typical one-step change. Always float32, also under
        autocast: the track runs in float32 (``predict_next_state``) and trains as it runs."""
        with torch.autocast("cpu", enabled=False):
            context_states, actions = context_states.float(), actions.float()
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
            return self.outcome.loss(before, actions[:, -1].float(), after, targets)

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
            return self.outcome(before, action.float(), after)

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
            context_states, actions = context_states.float(), actions.float()
            ctx = self.standardise_state(context_states)
            change = self._state_change(context_states, actions) * self.state_delta_std
        state = (ctx[:, -1] + change) * self.state_std + self.state_mean
        if self.ee_slot:  # never outside the states the model was trained on
            state = torch.minimum(torch.maximum(state, self.state_min), self.state_max)
        return state

    @torch.no_grad()
    def predict_next(
        self,
        context: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
        steps: int = 1,
        sampler: str = "euler",
        guidance: float = 1.0,
        states: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Sample the next raw latent (B, C, h, w) given raw context latents
        (B, K, C, h, w), oldest first, and the actions (B, K, A) in [-1, 1] taken after
        each of them; a state-track model also takes the task states (B, K+1, S) of the
        context frames and of the next frame, in world units. Randomness comes only from
        ``generator``."""
        cfg = self.cfg
        ctx = self.standardise(context)
        state_cond = maps = None
        if self.state_dynamics is not None:
            if states is None:
                raise ValueError("this model conditions on task states; pass states (B, K+1, S)")
            state_cond = self.standardise_state(states)
            maps = self.keypoint_maps(states.float())
        b = ctx.shape[0]
        shape = (b, cfg.latent_channels, cfg.latent_size, cfg.latent_size)
        sigmas = karras_sigmas(steps, cfg.edm.sigma_min, cfg.edm.sigma_max, cfg.edm.rho)
        x = torch.randn(shape, generator=generator) * sigmas[0]
        no_action = torch.zeros(b, dtype=torch.bool)

        def cond(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            return self.denoiser(x, sigma, ctx, actions, None, state_cond, maps)

        def uncond(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            return self.denoiser(x, sigma, ctx, actions, no_action, state_cond, maps)

        delta = get_sampler(sampler)(guided(cond, uncond, guidance), x, sigmas, generator)
        return self.unstandardise(ctx[:, -1] + delta * self.delta_std[:, None, None])

    @torch.no_grad()
    def predict_state(self, latent: torch.Tensor) -> torch.Tensor:
        """Task state (B, S) in world units (layout: ``cfg.state_spec``) from raw latents
        (B, C, h, w)."""
        if self.probe is None:
            return latent.new_zeros(len(latent), 0)
        return self.probe(self.standardise(latent)).float() * self.state_std + self.state_mean
