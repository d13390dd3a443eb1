"""The model card of a diffusion world model: what the network is, what its state track
does, how it was trained and what it scored on held-out windows."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from cosmos_env.distributed import batch_text
from cosmos_env.dynamics.diffusion.config import DiffusionConfig
from cosmos_env.precision import amp_text

if TYPE_CHECKING:
    from cosmos_env.dynamics.data import LatentEpisodes
    from cosmos_env.dynamics.diffusion.train_config import TrainDynamicsConfig


def _state_track_text(d: DiffusionConfig) -> str:
    """The card's sentences on the state track of dynamics config ``d``."""
    track = d.state_track
    if track is None:
        return " Reward and success are scored on the probe's state."
    text = (
        f" A state track carries the task state: an MLP (width {track.width}) predicts "
        f"the next state from the context's states{' and actions' if d.action_dim else ''}, "
        "and the denoiser is "
        "conditioned on the context's and the next frame's states (two MLPs, as for the "
        f"actions; training adds noise up to {track.noise} std to them). Reward and "
        "success are scored on that state (the world's functions, or the outcome heads); "
        "the probe starts the track when a reset gives frames only."
    )
    ee = track.integrator.slot if track.integrator else ""
    if ee:
        text += (
            f" The {ee} slot is moved exactly by the end-effector delta actions "
            "(scaled to the store's action range) and clipped to the "
            "training states' range; the MLP learns only the rest."
        )
    if track.contact:
        text += (
            f" The MLP also reads contact features: the offsets of "
            f"{', '.join(track.contact.slots)} from {track.contact.anchor or ee} in every "
            "context frame and "
            "their last one-step motion."
        )
    if track.frame_head:
        head = track.frame_head
        text += (
            f" The planar motion of {', '.join(head.objects)} comes from a head (width "
            f"{head.width}) that sees the scene in the frame of {head.quat}'s yaw, "
            "where a push looks the same in every direction (`dynamics/gripper_frame.py`)."
        )
    if d.keypoint_channels:
        text += (
            f" The positions {', '.join(track.keypoints.slots)} of every state are also "
            "drawn as Gaussian blobs on the token grid through the camera's projection and "
            "read with the frames."
        )
    if d.outcome_heads:
        text += (
            " Outcome heads (an MLP, width "
            f"{d.outcome_heads.width}) learn reward, termination and success from the state "
            "before and after each step and its action, for what the world does not define."
        )
    return text


def _conditioning_text(d: DiffusionConfig) -> str:
    """The card's sentences on what conditions the denoiser: actions and instructions."""
    if d.action_dim:
        text = (
            "the noise level and the actions condition it through AdaLN (one action MLP adds "
            "to the noise embedding, one to the shared AdaLN term)."
        )
    else:
        text = (
            "the noise level conditions it through AdaLN. It reads no actions "
            "(`dynamics.actions=false`): an instruction->video model, which imagines what "
            "follows from the frames and the instruction alone."
        )
    if d.text is not None:
        enc = d.text.encoder
        text += (
            " Every block cross-attends to the instruction's tokens from a text encoder "
            f"trained with it (width {enc.width}, depth {enc.depth}, a vocabulary of "
            f"{len(d.text.words)} words from the training instructions); "
            f"{d.text.dropout:.0%} of training windows get the null text (and lose their "
            "actions), for classifier-free guidance."
        )
    return text


def diffusion_card(
    cfg: TrainDynamicsConfig, world, paths, train: LatentEpisodes, steps, wall, metrics
) -> str:
    """The model card of a diffusion world model trained by ``cfg`` on the stores ``paths``."""
    d, net, edm = cfg.dynamics, cfg.dynamics.net, cfg.dynamics.edm
    mlp = "Mix-FFN (depthwise 3x3 conv) MLPs" if net.conv_mlp else "plain MLPs"
    lines = [
        f"# Diffusion world model: {world.name}",
        "",
        f"An EDM denoiser over {d.latent_channels}x{d.latent_size}x{d.latent_size} latents of "
        f"the tokenizer `{Path(cfg.tokenizer).name if '/' in cfg.tokenizer else cfg.tokenizer}` "
        f"(its weights checksum is in config.json; another tokenizer is refused). Network: a "
        f"DiT (width {net.width}, depth {net.depth}, {net.heads} heads, patch {net.patch}, {mlp}, "
        f"RMS-normalised Q/K, factorised position embeddings, AdaLN-LoRA rank {net.adaln_rank}) "
        f"over the 64 tokens of the next frame, with {d.context} context latents concatenated "
        f"along channels; {_conditioning_text(d)} It diffuses "
        "the standardised change from the last context latent. A convolutional state probe "
        f"reads the {d.state_dim}-d state from a latent." + _state_track_text(d),
        "",
        f"- Data: {', '.join(p.name for p in paths)} (world {world.name}); "
        f"{train.n_frames} training frames in {len(train.starts)} "
        f"episodes, held-out split val_fraction {cfg.val_fraction}",
        f"- Training: {steps} steps at batch {batch_text(cfg.batch_size)} "
        f"({cfg.early_fraction:.0%} of each batch from the first {cfg.early_steps} steps of "
        f"episodes), AdamW lr {cfg.lr} cosine, "
        f"EMA {cfg.ema_decay}, log-normal sigmas (P_mean {edm.p_mean}, P_std {edm.p_std}), context "
        f"noise up to {edm.context_noise}, action dropout {edm.action_dropout}, "
        f"{amp_text(cfg.amp)}"
        + (f", {cfg.state_batch} extra state-track windows per step" if cfg.state_batch else "")
        + f"; wall time {wall / 60:.1f} min on {torch.get_num_threads()} CPU threads",
        f"- Sampler: {cfg.sampler}, {cfg.sampler_steps} step(s) on the Karras schedule "
        f"(sigma_max {edm.sigma_max})",
        "- Held-out windows at the end of training (EMA weights; PSNR against the tokenizer's "
        "reconstruction, h16 = open loop from episode starts, <name>_cm_h16 = the model's "
        "own state at h16): " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()),
        f"- Reproduce: `python -m cosmos_env train-dynamics dynamics=diffusion "
        f"tokenizer={cfg.tokenizer} data={cfg.data} stores='{cfg.stores}'`",
    ]
    return "\n".join(lines) + "\n"
