"""``make demo``: the scripted expert in the tabletop world, as video, contact sheet, reward
plot and metrics table under ``outputs/demo``; then the shipped world model against MuJoCo
from the same first frames under the same actions, under ``outputs/demo/compare``."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from cosmos_env import checkpoint  # noqa: E402
from cosmos_env.config import CompareConfig, DemoConfig  # noqa: E402
from cosmos_env.dynamics.release import WorldModel, load_world_model  # noqa: E402
from cosmos_env.eval import media  # noqa: E402
from cosmos_env.eval.compare import HELD_OUT_SEED, run_compare  # noqa: E402
from cosmos_env.sim.experts import ScriptedExpert  # noqa: E402
from cosmos_env.sim.tabletop_env import TabletopEnv  # noqa: E402


def _rollout(env: TabletopEnv, expert: ScriptedExpert, seed: int) -> dict:
    obs, info = env.reset(seed=seed)
    frames, rewards, success_step = [obs], [], None
    for t in range(env.task.max_episode_steps):
        obs, reward, _, _, info = env.step(expert.act(info["state"]))
        frames.append(obs)
        rewards.append(reward)
        if info["is_success"] and success_step is None:
            success_step = t + 1
    return {"frames": np.stack(frames), "rewards": np.array(rewards), "success_step": success_step}


TRAIN_HINT = """the demo needs the world model {name!r}, which is not there: {error}
Train it (on 2 CPU cores, about an hour all told), then rerun the demo:
  python -m cosmos_env retrain        # data, tokenizer and dynamics from nothing
  cp -r outputs/retrain/dynamics/release cosmos_env/pretrained/diffusion-push
or, with the shipped CI8x8 tokenizer and datasets/tabletop/data prepared and encoded
(python datasets/tabletop/prepare.py; python -m cosmos_env encode tokenizer=CI8x8):
  python -m cosmos_env train-dynamics tokenizer=CI8x8 out=outputs/dynamics/diffusion-push
  python -m cosmos_env demo checkpoint=outputs/dynamics/diffusion-push/release"""


def _world_model(name: str) -> WorldModel:
    """The demo's world model, or an error that says how to train it."""
    try:
        checkpoint.resolve(name)
    except checkpoint.CheckpointError as e:
        raise checkpoint.CheckpointError(TRAIN_HINT.format(name=name, error=e)) from None
    return load_world_model(name)


def run_demo(cfg: DemoConfig) -> dict:
    """Run the demo and return its metrics (the world model's comparison summary under
    ``world_model``); files go to ``cfg.out``."""
    wm = _world_model(cfg.checkpoint)  # fail before the minute of work, not after
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = _expert_demo(cfg, out)
    compare_cfg = CompareConfig(
        noise=cfg.compare_noise,
        episodes=cfg.compare_episodes,
        checkpoint=cfg.checkpoint,
        horizon=cfg.compare_horizon,
        seed=HELD_OUT_SEED + cfg.seed,
        video_episodes=cfg.compare_episodes,
        upscale=cfg.upscale,
        out=str(out / "compare"),
    )
    print()
    result = run_compare(compare_cfg, world_model=wm)
    return metrics | {"world_model": result["summary"]}


def _expert_demo(cfg: DemoConfig, out: Path) -> dict:
    """The scripted expert in MuJoCo: video, contact sheet, reward plot, metrics table."""
    results: dict[str, list[dict]] = {}
    jobs = [(task, ep) for task in cfg.tasks for ep in range(cfg.episodes)]
    for task, ep in tqdm(jobs, desc="demo", unit="ep"):
        # Full-length episodes: the video shows what happens after success too.
        env = TabletopEnv(task=task, image_size=cfg.image_size, terminate_on_success=False)
        expert = ScriptedExpert(task, cfg.noise, seed=cfg.seed + ep)
        results.setdefault(task, []).append(_rollout(env, expert, seed=cfg.seed + ep))
        env.close()

    episodes = [r for task in cfg.tasks for r in results[task]]
    video = np.concatenate([media.upscale(r["frames"], cfg.upscale) for r in episodes])
    media.write_video(out / "tabletop_expert.mp4", video, fps=5)
    sheet = media.contact_sheet([media.upscale(r["frames"], 2) for r in episodes], columns=8)
    media.write_png(out / "contact_sheet.png", sheet)
    _plot_rewards(results, out / "rewards.png")

    metrics, table = _expert_metrics(results)
    (out / "metrics.md").write_text(table + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(table)
    print(f"\nwrote {out}/tabletop_expert.mp4, contact_sheet.png, rewards.png, metrics.md")
    return metrics


def _expert_metrics(results: dict[str, list[dict]]) -> tuple[dict, str]:
    """Per task: success rate, mean return, mean steps to success; and their table."""
    rows, metrics = [], {}
    for task, runs in results.items():
        success = float(np.mean([r["success_step"] is not None for r in runs]))
        steps = [r["success_step"] for r in runs if r["success_step"] is not None]
        ret = float(np.mean([r["rewards"].sum() for r in runs]))
        mean_steps = float(np.mean(steps)) if steps else float("nan")
        metrics[task] = {
            "success_rate": success,
            "mean_return": ret,
            "steps_to_success": mean_steps,
        }
        rows.append([task, len(runs), success, ret, mean_steps])
    header = ["task", "episodes", "success rate", "mean return", "steps to success"]
    return metrics, media.markdown_table(header, rows)


def _plot_rewards(results: dict[str, list[dict]], path: Path) -> None:
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.2), squeeze=False)
    for ax, (task, runs) in zip(axes[0], results.items(), strict=True):
        for i, r in enumerate(runs):
            ax.plot(np.arange(1, len(r["rewards"]) + 1), r["rewards"], label=f"episode {i}")
            if r["success_step"] is not None:
                ax.axvline(r["success_step"], color=f"C{i}", linestyle=":", linewidth=1)
        ax.set(title=f"tabletop {task}: dense reward", xlabel="step (5 Hz)", ylabel="reward")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
