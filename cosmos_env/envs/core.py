"""The batched state both world-model envs share: per sub-env latent context, the last
decoded frame and the probed task state; reset rows from frames, step all rows in one
batched forward, score with the task's functions."""

from __future__ import annotations

import copy
import dataclasses
import json
from functools import lru_cache

import numpy as np
import torch
from torch.profiler import record_function

from cosmos_env.checkpoint import CheckpointError
from cosmos_env.data.held_out import held_out_first_frames
from cosmos_env.data.world import World, load_world
from cosmos_env.dynamics.backends import get_backend
from cosmos_env.dynamics.release import WorldModel, default_checkpoint, load_world_model
from cosmos_env.dynamics.rollout import initial_context, step_context
from cosmos_env.envs.resets import RESET_SOURCES, SimResets, check_frames, check_states
from cosmos_env.envs.scoring import Scorer
from cosmos_env.guardrails.text import guard_text
from cosmos_env.machine import set_torch_threads
from cosmos_env.precision import AmpSetting, autocast, resolve_amp

STEP_STAGES = ("dynamics", "decode", "score")  # a step's profiler labels (env_profile.py)


@lru_cache(maxsize=4)
def shared_world_model(checkpoint: str, tokenizer: str | None) -> WorldModel:
    """One loaded world model per (checkpoint, tokenizer): envs only read it (eval mode)."""
    return load_world_model(checkpoint, tokenizer)


@lru_cache(maxsize=4)
def shared_world(description: str) -> World | None:
    """One built world per description (JSON text): its simulator is only read."""
    return load_world(json.loads(description), "the release's world")


def env_world_model(
    world: str | None, checkpoint: str | None, backend: str | None, tokenizer: str | None
) -> WorldModel:
    """The world model an env runs: ``checkpoint`` if given, else the shipped one of
    ``backend`` (default "diffusion") for the world named ``world``. A checkpoint of another
    kind than the requested backend, or of another world than ``world``, is refused."""
    wanted = get_backend(backend) if backend is not None else None  # refuses unknown names
    if checkpoint is None:
        if world is None:
            raise ValueError(
                "cosmos_env/WorldModel-v0 needs checkpoint=DIR (a release: python -m cosmos_env "
                "make-world-model makes one), or use a per-world id"
            )
        checkpoint = default_checkpoint(backend or "diffusion", world)
    wm = shared_world_model(str(checkpoint), tokenizer)
    kind = getattr(wm.dynamics.cfg, "kind", "diffusion")
    if wanted is not None and wanted.kind != kind:
        raise ValueError(
            f"backend={backend!r} but checkpoint {wm.source} is a {kind} model; pass a "
            f"{wanted.kind} checkpoint or leave out one of the two"
        )
    if world is not None and wm.world.name != world:
        raise ValueError(
            f"checkpoint {wm.source} is a world model of {wm.world.name!r}, but this env id is "
            f"for {world!r}: use the id of its world, or gymnasium.make("
            "'cosmos_env/WorldModel-v0', checkpoint=...) for any checkpoint"
        )
    return wm


def check_sampler_steps(steps, default: int) -> int:
    """``steps`` as a positive int (None: ``default``); 0, negatives, fractions and bools
    are refused rather than rounded or replaced."""
    if steps is None:
        return int(default)
    try:
        whole = not isinstance(steps, bool) and float(steps).is_integer()
    except (TypeError, ValueError):
        whole = False
    if not whole or int(steps) < 1:
        raise ValueError(f"sampler_steps must be a whole number >= 1 or None, got {steps!r}")
    return int(steps)


class WorldModelCore:
    """State of ``num_envs`` world-model rollouts.

    ``frames`` uint8 (N, H, W, 3) are the current observations, ``states`` float64 (N, S)
    the task states (the world model's state track, or the probe's reading of the frame
    for models without one); ``step`` advances every row with one batched prediction and
    scores it (``outcome``: reward, is_success, is_terminal, see ``envs/scoring.py``).
    """

    def __init__(
        self,
        world_model: WorldModel,
        num_envs: int,
        sparse_reward: bool,
        sampler: str | None,
        sampler_steps: int | None,
        reset_source: str,
        store: str | None,
        amp: AmpSetting,
        compile: bool = False,
        guidance: float = 1.0,
    ) -> None:
        if reset_source not in RESET_SOURCES:
            raise ValueError(f"reset_source {reset_source!r} unknown; choose from {RESET_SOURCES}")
        if not world_model.dynamics.cfg.actions:
            raise ValueError(
                f"{world_model.source} reads no actions (an instruction->video model, "
                "dynamics.actions=false), so there is nothing for env.step to take: roll it "
                "out with `python -m cosmos_env imagine` or `cosmos_env.dynamics.rollout`"
            )
        if compile:  # on a copy: the caller's world model stays as it was
            dynamics = copy.deepcopy(world_model.dynamics)
            dynamics.compile_network()
            world_model = dataclasses.replace(world_model, dynamics=dynamics)
        self.wm = world_model
        self.world = simulator_world(world_model)
        if reset_source in ("sim", "mujoco") and self.world is None:
            raise ValueError(
                f"reset_source={reset_source!r} needs a simulator, but {world_model.source} is a "
                f"world model of the store-only world {world_model.world.name!r}; reset from "
                "'store' (held-out frames) or 'frames' (your own)"
            )
        self.scorer = Scorer(world_model, self.world)
        self.num_envs = num_envs
        self.sparse_reward = sparse_reward
        if sparse_reward and self.scorer.sources["is_success"] == "none":
            raise ValueError(
                f"sparse_reward=True scores success, which world {world_model.world.name!r} "
                "does not define and the model did not learn"
            )
        self.sampler = sampler or world_model.sampler
        samplers = world_model.dynamics.samplers
        if self.sampler not in samplers:
            raise ValueError(
                f"sampler={self.sampler!r} unknown to {world_model.source.name} "
                f"({world_model.backend}); choose one of {samplers}"
            )
        self.sampler_steps = check_sampler_steps(sampler_steps, world_model.sampler_steps)
        self.reset_source = reset_source
        self.guidance = float(guidance)
        self.follows_text = world_model.dynamics.text is not None
        self.instructions = [""] * num_envs  # each row's, for instruction models
        self.amp = resolve_amp(amp)  # "auto": bf16 only where the CPU has it natively
        set_torch_threads()  # no more threads than usable cores
        size, cfg = world_model.image_size, world_model.dynamics.cfg
        self.image_size, self.state_dim = size, cfg.state_dim
        self.frames = np.zeros((num_envs, size, size, 3), np.uint8)
        self.states = np.zeros((num_envs, cfg.state_dim))
        self.outcome = _empty_outcome(num_envs)
        self.context = None
        self._pool, self._pool_states = world_model.reset_frames, world_model.reset_states
        if store is not None:
            self._pool, self._pool_states = held_out_first_frames(str(store))
        self._sim = None
        if reset_source in ("sim", "mujoco"):
            self._sim = SimResets(self.world, size)

    def initial_frames(
        self, rng: np.random.Generator, num: int, frames=None, states=None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Initial frames uint8 (num, k, H, W, 3) for ``num`` rows from the reset source,
        with their true task states (num, k, S) where the source knows them (a store, a
        MuJoCo reset, or states the caller passes with its frames), else None."""
        ctx = self.wm.dynamics.cfg.context
        if frames is not None:
            frames = check_frames(frames, num, self.image_size, ctx)
            if states is not None:
                states = check_states(states, frames.shape[:2], self.state_dim)
            return frames, states
        if states is not None:
            raise ValueError("reset options give 'states' without 'frames'; pass both")
        if self.reset_source == "frames":
            raise ValueError(
                "reset_source='frames' needs reset(options={'frames': uint8 array of shape "
                f"({num}, {self.image_size}, {self.image_size}, 3)}})"
            )
        if self._sim is not None:
            frames, states = self._sim.sample(rng, num)
            return frames[:, None], states[:, None]
        rows = rng.integers(0, len(self._pool), num)
        return self._pool[rows][:, None], self._pool_states[rows][:, None]

    def reset_rows(
        self, mask: np.ndarray, frames: np.ndarray, states=None, instructions=None
    ) -> None:
        """Start the rows where ``mask`` (N,) is True from ``frames`` (M, k, H, W, 3) and,
        when known, their states (M, k, S); unknown states are read by the probe. An
        instruction model follows ``instructions`` (M texts, or one for all), or else the
        instruction the states carry."""
        m, k = frames.shape[:2]
        texts, states = self._instructions(m, states, instructions)
        flat = torch.from_numpy(np.ascontiguousarray(frames.reshape(m * k, *frames.shape[2:])))
        latents = self.wm.encode(flat)
        latents = latents.view(m, k, *latents.shape[1:])
        if states is not None:
            states = torch.as_tensor(np.asarray(states), dtype=torch.float32)
        new = initial_context(self.wm.dynamics, latents, None, states, texts)
        for row, text in zip(np.flatnonzero(mask), texts or [], strict=False):
            self.instructions[row] = text
        if mask.all():
            self.context = new
        elif self.context is None:
            raise RuntimeError("the first reset must start every sub-env (no reset_mask)")
        else:
            self.context.set_rows(torch.from_numpy(np.flatnonzero(mask)), new)
        self.frames[mask] = frames[:, -1]
        if new.states is not None:
            self.states[mask] = new.states[:, -1].double().numpy()
        else:
            self.states[mask] = self.wm.dynamics.predict_state(latents[:, -1]).double().numpy()
        for key, value in _empty_outcome(int(mask.sum())).items():
            self.outcome[key][mask] = value
        self.outcome["is_success"][mask] = self.scorer.initial_success(self.states[mask])

    def _instructions(self, m: int, states, given) -> tuple[list[str] | None, object]:
        """The M new rows' instructions (None for a model that reads none) and their states
        with the world's instruction slots set to them, where the world has such slots."""
        if not self.follows_text:
            if given is not None:
                raise ValueError(
                    f"{self.wm.source} follows no instructions (dynamics.text=null); reset "
                    "without options['instruction']"
                )
            return None, states
        slots = self.world is not None and hasattr(self.world, "instructed")
        if given is None:
            if states is None or not slots:
                raise ValueError(
                    f"{self.wm.source} follows instructions: reset(options={{'instruction': "
                    "text}) (this reset's source carries none)"
                )
            return self.world.instructions(np.asarray(states)[:, -1]), states
        texts = [given] * m if isinstance(given, str) else [str(t) for t in given]
        texts = [guard_text(t) for t in texts]  # before any world or model reads them
        if len(texts) != m:
            raise ValueError(f"{len(texts)} instructions for {m} reset rows")
        if slots and states is not None:
            s = np.asarray(states)
            flat = self.world.instructed(s.reshape(-1, s.shape[-1]), np.repeat(texts, s.shape[1]))
            states = flat.reshape(s.shape)
        return texts, states

    @torch.inference_mode()
    def step(self, actions: np.ndarray, generator: torch.Generator) -> None:
        """Advance every row by its action (N, A) float32 in [-1, 1], and score the step."""
        action = torch.from_numpy(actions)
        before = self.states.copy()
        with autocast(self.amp), record_function("dynamics"):
            latent, state = step_context(
                self.wm.dynamics,
                self.context,
                action,
                generator,
                self.sampler_steps,
                self.sampler,
                self.guidance,
            )
        check_finite_prediction(self.wm, self.amp, latent=latent, state=state)
        # bf16 decoding: 58 dB from float32 on the shipped worlds
        with autocast(self.amp), record_function("decode"):
            self.frames[:] = self.wm.decode(latent).numpy()
        self.states[:] = state.double().numpy()
        with record_function("score"):
            self.outcome = self.scorer.score(before, actions, self.states)

    def reward(self) -> np.ndarray:
        """The last step's reward (N,) float64 (the success flag when ``sparse_reward``)."""
        if self.sparse_reward:
            return self.outcome["is_success"].astype(np.float64)
        return self.outcome["reward"].copy()

    def success(self) -> np.ndarray:
        """Whether the task is solved in each row's current state (N,) bool."""
        return self.outcome["is_success"].copy()

    def terminal(self) -> np.ndarray:
        """Whether each row's episode ended in its last step (N,) bool (the world's own
        termination: a fall, a failure; success is the envs' ``terminate_on_success``)."""
        return self.outcome["is_terminal"].copy()

    def close(self) -> None:
        if self._sim is not None:
            self._sim.close()


def simulator_world(wm: WorldModel) -> World | None:
    """The world ``wm`` was trained on, built from its release's description (one shared
    instance per description); None for a store-only world."""
    description = wm.world.description
    return None if description is None else shared_world(json.dumps(description, sort_keys=True))


def _empty_outcome(n: int) -> dict[str, np.ndarray]:
    return {
        "reward": np.zeros(n),
        "is_success": np.zeros(n, bool),
        "is_terminal": np.zeros(n, bool),
    }


def check_finite_prediction(wm: WorldModel, amp: bool, **predicted: torch.Tensor) -> None:
    """Raise a `CheckpointError` naming ``wm``'s checkpoint if any predicted tensor (B, ...)
    holds NaN or inf, which a sound model never gives: its weights are corrupt or diverged.
    Costs one ``isfinite`` per tensor; the rows are located only on failure."""
    for what, tensor in predicted.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            rows = (~torch.isfinite(tensor.flatten(1)).all(1)).nonzero().flatten().tolist()
            hint = "; bf16 autocast was on, so also try amp=False" if amp else ""
            raise CheckpointError(
                f"the world model {wm.source} predicted a non-finite {what} (NaN or inf) for "
                f"sub-envs {rows}: its weights are corrupt or diverged. Re-download the "
                f"checkpoint or re-export it from its training run{hint}"
            )
