"""``python -m policies.train_bc data=PATH out=DIR [key=value ...]``: behaviour cloning of
the scripted expert's push episodes into a `BCPolicy`.

The training episodes' frames, gripper proprioception and actions are held in memory
(uint8 frames; about 250 MB for 20k frames). Each step regresses a batch of actions from
randomly shifted frames in the one training loop (``cosmos_env.training.fit``: resumable
from ``out/train_state.pt``, a wall-clock budget, ``out/train.log`` and TensorBoard);
releases go to ``out/step_{N}/`` at the ``save_at`` steps (and at the last step). The
train/val split is the store's own (`EpisodeStore.split`), so the held-out episodes are the
ones the world model holds out too.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cosmos_env import checkpoint
from cosmos_env.config import load_config
from cosmos_env.data.store import EpisodeStore, StoreError
from cosmos_env.dynamics.data import select_stores, store_action_spec
from cosmos_env.machine import set_torch_threads
from cosmos_env.sim import state_layout as sl
from cosmos_env.training import Board, file_logger, fit, reseeder
from policies.bc import KIND, PROPRIO_SLOTS, BCConfig, BCNet, frames_to_unit, proprio_from_states

BLOCK_ROWS = 1024  # rows read from a store at a time: bounds the memory of the masked copy
STD_FLOOR = 1e-2  # metres: a proprio feature that barely varies in the demos is not blown up


@dataclass
class TrainBCConfig:
    model: BCConfig = field(default_factory=BCConfig)
    data: str = "outputs/retrain/data"  # a store, or a directory of *.zarr stores
    stores: str = "push-noise0.0*"  # glob over the store directory names under `data`
    out: str = "outputs/policies/bc-push"
    steps: int = 3000
    save_at: list[int] = field(default_factory=lambda: [300, 1000, 3000])
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    loss: str = "mse"  # mse | huber
    max_minutes: float = 20.0  # stop early (and release) when the wall-clock budget is spent
    ema_decay: float = 0.0  # 0: no average, the released net is the trained one
    augment_shift: int = 4  # pixels of random shift (edge-replicated pad, then crop)
    val_fraction: float = 0.1
    split_seed: int = 0  # the store split's seed: the world model's training used 0
    eval_frames: int = 512  # train/val frames (evenly spaced) each loss evaluation uses
    eval_every: int = 100  # steps between held-out loss evaluations (train.log, TensorBoard)
    save_every: int = 500  # steps between resumable training states (out/train_state.pt)
    resume: bool = True
    seed: int = 0
    threads: int = 0  # 0 = torch's default (all cores)


@dataclass
class BCData:
    """Non-padding rows of some episodes: frames uint8 (N, H, W, 3), proprio float32 (N, 4)
    in metres, actions float32 (N, 7) in [-1, 1]; ``episodes`` is how many they come from."""

    frames: np.ndarray
    proprio: np.ndarray
    actions: np.ndarray
    episodes: int

    def __len__(self) -> int:
        return len(self.frames)


def load_train_bc_config(overrides: list[str]) -> TrainBCConfig:
    """Compose ``policies/conf/train_bc.yaml`` with Hydra ``overrides`` (``key=value``)
    into a `TrainBCConfig`; unknown keys and wrong types raise."""
    return load_config("train_bc", TrainBCConfig, overrides, config_module="policies.conf")


def check_config(cfg: TrainBCConfig) -> None:
    """ValueError for settings that cannot train: bad counts, save_at beyond steps, ..."""
    counts = (cfg.steps, cfg.batch_size, cfg.eval_every, cfg.save_every, cfg.eval_frames)
    if min(counts) < 1:
        raise ValueError("steps, batch_size, eval_every, save_every and eval_frames must be >= 1")
    bad = [s for s in cfg.save_at if not 1 <= s <= cfg.steps]
    if bad:
        raise ValueError(
            f"save_at={list(cfg.save_at)} has steps {bad} outside [1, steps={cfg.steps}]; "
            "raise steps or drop them"
        )
    if cfg.loss not in ("mse", "huber"):
        raise ValueError(f"loss must be 'mse' or 'huber', got {cfg.loss!r}")
    if cfg.augment_shift < 0:
        raise ValueError(f"augment_shift must be >= 0, got {cfg.augment_shift}")


def select_bc_stores(data: str | Path, pattern: str) -> list[Path]:
    """The stores under ``data`` whose names match ``pattern``, or a ValueError naming both."""
    try:
        return select_stores(data, pattern)
    except StoreError as e:
        raise ValueError(
            f"no episode store to train on: data={str(data)!r} with stores={pattern!r} "
            f"matches none ({e}); point data at a store or a directory of *.zarr stores"
        ) from e


def _check_store(store: EpisodeStore, cfg: BCConfig) -> None:
    f, size = store.features, cfg.image_size
    if "rgb" not in f or f["rgb"].shape != (size, size, 3):
        raise ValueError(f"{store.path}: BC needs rgb frames ({size}, {size}, 3)")
    if f["state"].shape != (sl.STATE_DIM,) or f["action"].shape != (cfg.action_dim,):
        raise ValueError(
            f"{store.path}: BC needs state ({sl.STATE_DIM},) and action ({cfg.action_dim},), "
            f"got {f['state'].shape} and {f['action'].shape}"
        )


def load_bc_data(
    paths: list[Path], split: str, val_fraction: float, split_seed: int, cfg: BCConfig
) -> BCData:
    """The ``split`` ("train"/"val") episodes of every store, without each episode's last
    row (``is_last``: its action is padding, not the expert's)."""
    parts: dict[str, list[np.ndarray]] = {"frames": [], "proprio": [], "actions": []}
    episodes = 0
    for path in paths:
        store = EpisodeStore.open(path)
        _check_store(store, cfg)
        train, val = store.split(val_fraction, split_seed)
        chosen = train if split == "train" else val
        episodes += len(chosen)
        keep = np.zeros(store.n_frames, bool)
        for ep in chosen:
            keep[slice(*store.episode_bounds(int(ep)))] = True
        for start in range(0, store.n_frames, BLOCK_ROWS):
            end = min(start + BLOCK_ROWS, store.n_frames)
            if not keep[start:end].any():
                continue
            rows = store.get_rows(start, end, ["rgb", "state", "action", "is_last"])
            mask = keep[start:end] & ~rows["is_last"]
            parts["frames"].append(rows["rgb"][mask])
            parts["proprio"].append(proprio_from_states(rows["state"][mask]))
            parts["actions"].append(rows["action"][mask].astype(np.float32))
    if split == "train" and not any(len(p) for p in parts["frames"]):
        raise ValueError(f"no training rows in {[str(p) for p in paths]}")
    size = cfg.image_size
    empty = {"frames": (0, size, size, 3), "proprio": (0, cfg.proprio_dim)}
    empty["actions"] = (0, cfg.action_dim)
    arrays = {
        k: np.concatenate(v) if v else np.zeros(empty[k], np.uint8 if k == "frames" else np.float32)
        for k, v in parts.items()
    }
    return BCData(**arrays, episodes=episodes)


def random_shift(frames: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each frame (B, C, H, W) by up to ``pad`` pixels each way: pad by edge
    replication, crop back to (H, W) at a random offset (DrQ). Why: the world model's
    frames are slightly shifted and blurred versions of MuJoCo's."""
    if pad == 0:
        return frames
    b, _, h, w = frames.shape
    padded = F.pad(frames, (pad, pad, pad, pad), mode="replicate")  # (B, C, H+2p, W+2p)
    offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator)
    rows = offsets[:, :1] + torch.arange(h)  # (B, H)
    cols = offsets[:, 1:] + torch.arange(w)  # (B, W)
    batch = torch.arange(b)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def _loss(cfg: TrainBCConfig, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # MSE by default: the expert is deterministic, so the mean action is its action. Huber
    # for noisy demonstrations, where large outliers would otherwise dominate the gradient.
    if cfg.loss == "huber":
        return F.smooth_l1_loss(pred, target, beta=0.1)
    return F.mse_loss(pred, target)


@torch.no_grad()
def evaluate(net: BCNet, data: BCData, n: int, batch: int = 256) -> float | None:
    """Mean squared action error (in [-1, 1] units) on ``n`` evenly spaced rows of ``data``
    (no augmentation); None when ``data`` is empty."""
    if len(data) == 0:
        return None
    rows = np.unique(np.linspace(0, len(data) - 1, min(n, len(data))).astype(np.int64))
    net.eval()
    total = 0.0
    for i in range(0, len(rows), batch):
        r = rows[i : i + batch]
        pred = net(
            frames_to_unit(torch.from_numpy(data.frames[r])), torch.from_numpy(data.proprio[r])
        )
        total += F.mse_loss(pred, torch.from_numpy(data.actions[r]), reduction="sum").item()
    net.train()
    return total / (len(rows) * data.actions.shape[1])


def _card(cfg: TrainBCConfig, info: dict) -> str:
    m = cfg.model
    lines = [
        "# Behaviour cloning policy: tabletop push",
        "",
        f"A CNN (strided 3x3 convs {m.channels}, GroupNorm, SiLU, spatial softmax keypoints) "
        f"on the front-camera frame ({m.image_size}x{m.image_size}, [-1, 1]), joined late with "
        f"the standardised proprioception ({', '.join(PROPRIO_SLOTS)}, read from "
        f"info['state']) and an MLP ({m.depth}x{m.hidden}) to the 7-d action in [-1, 1] "
        "(tanh). Deterministic: no sampling.",
        "",
        f"- Data: {', '.join(info['stores'])} under `{cfg.data}`; {info['train_frames']} "
        f"training frames from {info['train_episodes']} episodes (held out: the store split "
        f"with val_fraction {cfg.val_fraction}, seed {cfg.split_seed})",
        f"- Training: {info['steps']} steps at batch {cfg.batch_size}, AdamW lr {cfg.lr} "
        f"(warmup {cfg.warmup_steps}, cosine), {cfg.loss} loss, random shift "
        f"{cfg.augment_shift} px; wall time {info['seconds'] / 60:.1f} min on "
        f"{torch.get_num_threads()} CPU threads",
        f"- Action MSE (no augmentation, {cfg.eval_frames} frames): train "
        f"{_fmt(info['train_loss'])}, held-out {_fmt(info['val_loss'])}",
        f"- Reproduce: `python -m policies.train_bc data={cfg.data} stores='{cfg.stores}' "
        f"steps={cfg.steps} seed={cfg.seed}`",
    ]
    return "\n".join(lines) + "\n"


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _release(cfg: TrainBCConfig, net: BCNet, info: dict) -> Path:
    """Write ``out/step_{N}`` atomically: weights (with the proprio stats), config, card."""
    config = {
        "kind": KIND,
        "model": asdict(net.cfg),
        "proprio": {
            "slots": list(PROPRIO_SLOTS),
            "mean": net.proprio_mean.tolist(),
            "std": net.proprio_std.tolist(),
        },
        **info,
        "training": asdict(cfg),
    }
    # float16 parameters: half the file, and the policy acts the same to ~1e-3.
    return checkpoint.save_release(
        Path(cfg.out) / f"step_{info['steps']}", net, config, _card(cfg, info), weights="float16"
    )


def _build(cfg: TrainBCConfig, train: BCData) -> tuple[BCNet, torch.optim.Optimizer]:
    torch.manual_seed(cfg.seed)
    net = BCNet(cfg.model)
    net.set_proprio_stats(train.proprio.mean(0), np.maximum(train.proprio.std(0), STD_FLOOR))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return net, opt


def _objective(cfg: TrainBCConfig, net: BCNet, train: BCData, rng, gen):
    """The step function `fit` runs: the loss on a random, randomly shifted batch."""

    def step() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        idx = rng.integers(0, len(train), cfg.batch_size)
        frames = frames_to_unit(torch.from_numpy(train.frames[idx]))  # (B, 3, H, W)
        frames = random_shift(frames, cfg.augment_shift, gen)
        pred = net(frames, torch.from_numpy(train.proprio[idx]))  # (B, A)
        loss = _loss(cfg, pred, torch.from_numpy(train.actions[idx]))
        return loss, {"loss": loss.detach()}

    return step


def _save(cfg: TrainBCConfig, net: BCNet, data: dict, step: int, seconds: float, log) -> Path:
    """Evaluate on train and val rows, release ``out/step_{step}``, log it."""
    info = data["base"] | {
        "steps": step,
        "seconds": seconds,
        "train_loss": evaluate(net, data["train"], cfg.eval_frames),
        "val_loss": evaluate(net, data["val"], cfg.eval_frames),
    }
    path = _release(cfg, net, info)
    log.info(
        "step %d release %s train %s val %s",
        step,
        path,
        _fmt(info["train_loss"]),
        _fmt(info["val_loss"]),
    )
    return path


def _prepare(cfg: TrainBCConfig) -> dict:
    """The selected stores' train/val rows and what every release's config records."""
    paths = select_bc_stores(cfg.data, cfg.stores)
    spec = store_action_spec(paths)
    train = load_bc_data(paths, "train", cfg.val_fraction, cfg.split_seed, cfg.model)
    val = load_bc_data(paths, "val", cfg.val_fraction, cfg.split_seed, cfg.model)
    base = {
        "data": str(cfg.data),
        "stores": [p.name for p in paths],
        "action_spec": spec.to_dict(),
        "train_frames": len(train),
        "train_episodes": train.episodes,
        "val_frames": len(val),
        "val_episodes": val.episodes,
    }
    return {"train": train, "val": val, "base": base}


def train_bc(cfg: TrainBCConfig) -> dict:
    """Train, release at ``cfg.save_at`` (and at the last step), return a summary: release
    paths, steps, seconds, and the action MSE on train rows before and after training
    and on held-out rows after. A killed run resumes when re-run with the same ``out``."""
    check_config(cfg)
    data = _prepare(cfg)
    train, val = data["train"], data["val"]
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log = file_logger("train_bc", out)
    set_torch_threads(cfg.threads)
    net, opt = _build(cfg, train)
    ema = copy.deepcopy(net).requires_grad_(False)  # ema_decay 0: the net itself
    log.info("config %s", asdict(cfg))
    _log_data(log, train, val, net)
    initial = evaluate(net, train, cfg.eval_frames)
    rng, gen = np.random.default_rng(cfg.seed), torch.Generator().manual_seed(cfg.seed)
    start = time.perf_counter()

    def release(step: int) -> None:
        if step in cfg.save_at:
            _save(cfg, ema, data, step, time.perf_counter() - start, log)

    def scores(step: int, final: bool) -> dict[str, float]:
        loss = evaluate(ema, val, cfg.eval_frames)
        return {} if loss is None else {"val_loss": loss}

    board = Board(out)
    step, seconds, _ = fit(
        cfg,
        net,
        ema,
        opt,
        out,
        log,
        board,
        _objective(cfg, net, train, rng, gen),
        scores,
        reseeder(cfg.seed, rng, gen),
        "train bc",
        release,
    )
    board.close()
    if step not in cfg.save_at:  # the last step, or the budget ran out first
        _save(cfg, ema, data, step, seconds, log)
    return _summary(cfg, out, step, seconds, initial, train, val)


def _log_data(log, train, val, net: torch.nn.Module) -> None:
    log.info(
        "data: %d train frames (%d episodes), %d val frames (%d episodes); %.3fM params",
        len(train),
        train.episodes,
        len(val),
        val.episodes,
        sum(p.numel() for p in net.parameters()) / 1e6,
    )


def _summary(cfg: TrainBCConfig, out: Path, step: int, seconds: float, initial, train, val):
    """What ``train_bc`` returns: the releases written, steps, time and losses."""
    done = sorted({s for s in cfg.save_at if s <= step} | {step})
    releases = [out / f"step_{s}" for s in done if (out / f"step_{s}" / "config.json").exists()]
    final = checkpoint.read_config(out / f"step_{step}")
    return {
        "releases": [str(r) for r in releases],
        "steps": step,
        "seconds": seconds,
        "seconds_per_step": seconds / max(1, step),
        "initial_train_loss": initial,
        "train_loss": final["train_loss"],
        "val_loss": final["val_loss"],
        "train_frames": len(train),
        "val_frames": len(val),
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print("usage: python -m policies.train_bc data=PATH out=DIR [key=value ...]")
        print("keys: " + ", ".join(TrainBCConfig.__dataclass_fields__))
        return 0
    summary = train_bc(load_train_bc_config(argv))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
