"""The world-model release (dynamics weights paired with their tokenizer's checksum) and
``python -m cosmos_env train-dynamics`` end to end on a tiny store."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tiny_diffusion import TINY_NET

from cosmos_env import checkpoint
from cosmos_env.config import GenerateConfig, load_config
from cosmos_env.data.state_spec import StateSpec
from cosmos_env.data.world import WorldInfo
from cosmos_env.dynamics.data import load_latent_episodes, select_stores
from cosmos_env.dynamics.diffusion.config import DiffusionConfig
from cosmos_env.dynamics.diffusion.model import LatentDynamics
from cosmos_env.dynamics.release import load_world_model, save_world_model
from cosmos_env.generate import generate
from cosmos_env.tokenizer import Tokenizer, TokenizerConfig
from cosmos_env.tokenizer.cache import load_cache
from cosmos_env.tokenizer.release import load_tokenizer, save_tokenizer

TINY_DYNAMICS = TINY_NET
# The same sizes as train-dynamics overrides of the composed config.
TINY_OVERRIDES = [
    *(f"dynamics.net.{k}={TINY_DYNAMICS[k]}" for k in ("width", "depth", "heads", "adaln_rank")),
    "dynamics.probe_width=8",
]


def tabletop_world_info(task: str = "push") -> WorldInfo:
    """What a release records of a tabletop task's world, as ``tests/conftest.py``'s helper
    of that name (not imported from there: ``from conftest import`` finds whichever test
    folder's conftest pytest loaded last, e.g. tests/data's in a full run)."""
    from cosmos_env.sim.worlds import tabletop_world

    w = tabletop_world(task)
    return WorldInfo(w.name, w.describe(), w.max_episode_steps, w.action_spec, w.state_spec)


# Tiny models: one thread avoids oversubscription when other jobs share the cores.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_tokenizer(directory, seed: int) -> Tokenizer:
    torch.manual_seed(seed)
    cfg = TokenizerConfig(channels=[8, 16], blocks=[1, 1], decoder_blocks=[1, 1], groups=4, heads=2)
    save_tokenizer(directory, Tokenizer(cfg))
    return load_tokenizer(directory)


def tiny_dynamics(seed: int = 0, **overrides) -> LatentDynamics:
    """A randomised tiny model whose parameters are exactly representable in float16."""
    torch.manual_seed(seed)
    model = LatentDynamics(DiffusionConfig.from_dict(dict(**{**TINY_DYNAMICS, **overrides})))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
            p.copy_(p.half().float())
        model.latent_mean.normal_()
        model.latent_std.uniform_(0.5, 2.0)
    return model.eval()


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """(release directory, the saved dynamics, its tokenizer)."""
    root = tmp_path_factory.mktemp("release")
    tokenizer = tiny_tokenizer(root / "tok", seed=0)
    model = tiny_dynamics()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    states = rng.normal(size=(5, 36)).astype(np.float32)
    directory = save_world_model(
        root / "dyn",
        model,
        tokenizer,
        tabletop_world_info(),
        "heun",
        3,
        frames,
        states,
        card="# tiny\n",
    )
    return directory, model, tokenizer, frames, states


def test_release_round_trip(released):
    directory, model, tokenizer, frames, states = released
    wm = load_world_model(directory)
    assert wm.tokenizer.checksum == tokenizer.checksum  # found through the recorded path
    assert (wm.world, wm.sampler, wm.sampler_steps) == (tabletop_world_info(), "heun", 3)
    assert wm.world.name == "tabletop-push" and wm.world.max_episode_steps == 50
    assert wm.world.action_spec.dim == wm.action_dim == 7 and wm.world.state_spec.dim == 36
    assert wm.image_size == 64 and wm.source == directory
    np.testing.assert_array_equal(wm.reset_frames, frames)
    np.testing.assert_array_equal(wm.reset_states, states)
    assert not wm.dynamics.training
    assert not any(p.requires_grad for p in wm.dynamics.parameters())
    assert wm.dynamics.cfg == model.cfg
    g = torch.Generator().manual_seed(0)
    context = torch.randn(2, 4, 16, 8, 8, generator=g)
    actions = torch.rand(2, 4, 7, generator=g) * 2 - 1

    def predict(m):
        return m.predict_next(context, actions, torch.Generator().manual_seed(1), 2, "heun")

    assert torch.equal(predict(wm.dynamics), predict(model))
    assert torch.equal(
        wm.dynamics.predict_state(context[:, -1]), model.predict_state(context[:, -1])
    )
    assert (directory / "card.md").read_text() == "# tiny\n"


def test_release_stores_float16_parameters_and_loads_float32(released):
    directory, model, _, _, _ = released
    tensors = load_file(directory / "model.safetensors")
    params = dict(model.named_parameters())
    assert params and all(tensors[name].dtype == torch.float16 for name in params)
    assert tensors["latent_mean"].dtype == torch.float32  # buffers keep full precision
    torch.testing.assert_close(tensors["latent_std"], model.latent_std, rtol=0, atol=0)
    wm = load_world_model(directory)
    assert all(t.dtype == torch.float32 for t in wm.dynamics.state_dict().values())


def test_loading_with_another_tokenizer_is_refused(released, tmp_path):
    directory, _, tokenizer, _, _ = released
    other = tiny_tokenizer(tmp_path / "other", seed=1)
    assert other.checksum != tokenizer.checksum
    with pytest.raises(checkpoint.CheckpointError) as err:
        load_world_model(directory, tokenizer=tmp_path / "other")
    message = str(err.value)
    assert tokenizer.checksum in message and other.checksum in message
    assert "retrain" in message or "Pass the tokenizer" in message
    with pytest.raises(checkpoint.CheckpointError, match=other.checksum):
        load_world_model(directory, tokenizer=other)
    # The right tokenizer, given explicitly (as a path or a model), is accepted.
    assert load_world_model(directory, tokenizer=str(tokenizer.source)).tokenizer is not None
    assert load_world_model(directory, tokenizer=tokenizer).tokenizer is tokenizer


def test_config_without_dynamics_section_is_refused(released, tmp_path):
    directory, *_ = released
    tok_dir = tmp_path / "tok"
    tiny_tokenizer(tok_dir, seed=2)
    with pytest.raises(checkpoint.CheckpointError, match="no 'dynamics' section"):
        load_world_model(tok_dir)  # a tokenizer release is not a world model
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in directory.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    config = json.loads((directory / "config.json").read_text())
    del config["dynamics"]
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(checkpoint.CheckpointError, match="no 'dynamics' section"):
        load_world_model(broken)
    config = json.loads((directory / "config.json").read_text())
    del config["world"]  # released before worlds were recorded
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(checkpoint.CheckpointError, match="has no 'world' section"):
        load_world_model(broken)
    config = json.loads((directory / "config.json").read_text())
    del config["world"]["state_spec"]
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(checkpoint.CheckpointError, match="invalid"):
        load_world_model(broken)
    config = json.loads((directory / "config.json").read_text())
    config["dynamics"]["net"]["width"] = 48  # the weights were saved for width 32
    config["dynamics"]["net"]["heads"] = 3
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(checkpoint.CheckpointError, match="does not match its config"):
        load_world_model(broken)
    config["dynamics"]["depht"] = 2
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(checkpoint.CheckpointError, match="invalid"):
        load_world_model(broken)
    with pytest.raises(checkpoint.CheckpointError, match="no checkpoint"):
        load_world_model(tmp_path / "missing")


# ----------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def latent_data(tmp_path_factory):
    """A tiny push store with its latents cached by a tiny tokenizer: (data dir, tokenizer)."""
    from cosmos_env.__main__ import main

    root = tmp_path_factory.mktemp("dyn_data")
    overrides = [f"out={root / 'data' / 'push.zarr'}", "task=push", "episodes=4", "workers=1"]
    generate(load_config("generate", GenerateConfig, overrides + ["max_steps=6"]))
    tiny_tokenizer(root / "tok", seed=0)
    assert main(["encode", f"tokenizer={root / 'tok'}", f"data={root / 'data'}"]) == 0
    return root / "data", root / "tok"


def test_latent_episodes_come_from_the_cache(latent_data):
    data, tok_dir = latent_data
    tokenizer = load_tokenizer(tok_dir)
    paths = select_stores(data, "*")
    train = load_latent_episodes(paths, tokenizer, "train", 0.25)
    val = load_latent_episodes(paths, tokenizer, "val", 0.25)
    assert len(train.starts) == 3 and len(val.starts) == 1
    assert train.latents.dtype == np.float16 and train.latents.shape[1:] == (16, 8, 8)
    assert train.actions.shape == (train.n_frames, 7) and train.states.shape[1] == 36
    np.testing.assert_array_equal(train.starts[1:], train.ends[:-1])
    from cosmos_env.data import EpisodeStore

    store = EpisodeStore.open(paths[0])
    cache = load_cache(store, tokenizer)
    assert train.n_frames + val.n_frames == store.n_frames
    _, (val_ep,) = store.split(0.25, 0)
    lo, hi = store.episode_bounds(int(val_ep))
    np.testing.assert_array_equal(val.latents, cache[lo:hi].astype(np.float16))
    with pytest.raises(Exception, match="no store"):
        select_stores(data, "pick*")


def test_train_dynamics_command_releases_and_resumes(latent_data, tmp_path, capsys):
    from cosmos_env.__main__ import main

    data, tok_dir = latent_data
    out = tmp_path / "run"
    args = [
        "train-dynamics",
        *TINY_OVERRIDES,
        "steps=4",
        "unroll_fraction=0.5",  # some batches learn from the model's own prediction
        "batch_size=8",
        "warmup_steps=2",
        "eval_every=2",
        "save_every=2",
        "eval_windows=8",
        "reset_frames=2",
        "val_fraction=0.25",
        "threads=1",
        f"tokenizer={tok_dir}",
        f"data={data}",
        "stores=*",
        f"out={out}",
    ]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 4 and np.isfinite(result["psnr_next"])
    # Positions are named after the StateSpec's end effector and objects (episodes of 6
    # steps are too short for the 16-step rollout scores).
    keys = {"latent_mse_next", "probe_state_std_err", "probe_cube_cm", "probe_gripper_cm"}
    assert keys <= set(result) and all(np.isfinite(result[k]) for k in keys)
    log = (out / "train.log").read_text()
    assert "finished: 4 steps" in log and "step 2 eval (EMA)" in log
    wm = load_world_model(out / "release")
    assert (
        wm.dynamics.cfg.net.width == 32
        and wm.tokenizer.checksum == load_tokenizer(tok_dir).checksum
    )
    assert wm.reset_frames.shape == (1, 64, 64, 3)  # one held-out episode, at most 2 frames
    assert wm.sampler == "euler" and wm.sampler_steps == 1
    # The world comes from the stores: their name, action spec and state spec.
    from cosmos_env.data import EpisodeStore

    store = EpisodeStore.open(select_stores(data, "*")[0])
    assert wm.world.name == "tabletop-push"  # the world's own name, as shipped releases have
    assert wm.world.description == store.world_description == tabletop_world_info().description
    assert wm.world.action_spec == store.action_spec
    assert wm.world.state_spec == store.state_spec
    assert StateSpec.from_dict(wm.dynamics.cfg.state_spec) == store.state_spec
    config = json.loads((out / "release" / "config.json").read_text())
    assert config["steps"] == 4 and "psnr_next" in config["metrics"]
    card = (out / "release" / "card.md").read_text()
    assert "Diffusion world model" in card
    # TensorBoard beside train.log: the losses and the held-out scores with a rollout.
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert "The planar motion of cube, cylinder comes from" in card
    # Training stats travel with the weights: the latents are standardised with them.
    assert not torch.equal(wm.dynamics.latent_std, torch.ones(16))
    # The end-effector integrator reads the actions' physical range from the store; the
    # state-track features are switched on from the StateSpec's roles.
    d = wm.dynamics.cfg
    track = d.state_track
    assert track.integrator.slot == "gripper_pos"
    assert track.contact.slots == ["cube_pos", "cylinder_pos"]
    assert track.keypoints.slots == ["gripper_pos", "cube_pos", "cylinder_pos"]
    assert (
        track.frame_head.objects == ["cube", "cylinder"] and track.frame_head.quat == "gripper_quat"
    )
    assert track.keypoints.camera == pytest.approx(list(store.state_spec.cameras["front"]))
    # Outcome heads (on in conf/dynamics/diffusion.yaml) learn the store's outcome columns.
    # the tiny stores never terminate or succeed: heads only for what the data shows
    assert wm.outcomes == ("reward",) and config["outcomes"] == ["reward"]
    zeros = torch.zeros(2, 36)
    outcome = wm.dynamics.predict_outcome(zeros, torch.zeros(2, 7), zeros)
    assert set(outcome) == {"reward", "is_terminal", "is_success"}  # the heads output all
    assert outcome["reward"].shape == (2,)
    assert wm.dynamics.cfg.action_high[:3] == pytest.approx([0.04] * 3)
    assert wm.dynamics.state_min[2] < wm.dynamics.state_max[2]

    assert main([a if a != "steps=4" else "steps=6" for a in args]) == 0
    log = (out / "train.log").read_text()
    assert "resumed from step 4" in log and "finished: 6 steps" in log
    assert json.loads((out / "release" / "config.json").read_text())["steps"] == 6


def test_train_dynamics_takes_the_shapes_from_the_data(latent_data, tmp_path, capsys):
    """The latent shape (the tokenizer's channels, the cached grid) and the state and action
    dims come from the data, whatever the dynamics config says, so they always match."""
    from cosmos_env.__main__ import main

    data, tok_dir = latent_data
    args = [
        "train-dynamics",
        *TINY_OVERRIDES,
        "dynamics.latent_channels=8",  # the tiny tokenizer's latents have 16 channels
        "dynamics.latent_size=4",  # and an 8x8 grid
        "dynamics.state_dim=5",
        "dynamics.action_dim=3",
        "steps=1",
        "batch_size=4",
        "eval_windows=4",
        "reset_frames=1",
        "val_fraction=0.25",
        "threads=1",
        f"tokenizer={tok_dir}",
        f"data={data}",
        "stores=*",
        f"out={tmp_path}",
    ]
    assert main(args) == 0
    capsys.readouterr()
    d = load_world_model(tmp_path / "release").dynamics.cfg
    assert (d.latent_channels, d.latent_size, d.state_dim, d.action_dim) == (16, 8, 36, 7)


def test_refit_state_track_trains_a_new_track_and_keeps_the_denoiser(latent_data, tmp_path, capsys):
    from cosmos_env.__main__ import main

    data, tok_dir = latent_data
    common = [f"data={data}", "stores=*", "val_fraction=0.25", "threads=1"]
    train = [
        "train-dynamics",
        *TINY_OVERRIDES,
        # a release whose track is the state MLP alone: no gripper-frame head from the roles
        "state_features=[integrator,contact,keypoints]",
        "steps=2",
        "batch_size=4",
        "eval_windows=4",
        "reset_frames=2",
        f"tokenizer={tok_dir}",
        f"out={tmp_path / 'run'}",
    ]
    assert main(train + common) == 0
    capsys.readouterr()
    source = tmp_path / "run" / "release"
    refit = ["refit-state-track", f"world_model={source}", "steps=3", "batch_size=8"]
    refit += ["eval_windows=4", "warmup_steps=1", f"out={tmp_path / 'refit'}"]
    assert main(refit + common) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"before", "after", "wall_minutes"}
    assert set(result["before"]) == set(result["after"]) and "psnr_next" in result["after"]
    old, new = load_world_model(source), load_world_model(tmp_path / "refit" / "release")
    assert old.dynamics.frame_head is None and new.dynamics.cfg.state_track.frame_head.objects == [
        "cube"
    ]
    assert new.dynamics.frame_head is not None
    old_weights, new_weights = old.dynamics.state_dict(), new.dynamics.state_dict()
    for key, value in old_weights.items():
        if key.startswith("denoiser.") or key.startswith("probe.") or "_std" in key:
            torch.testing.assert_close(new_weights[key], value)  # only the track is new
    assert not torch.equal(
        new_weights["state_dynamics.net.0.weight"], old_weights["state_dynamics.net.0.weight"]
    )
    np.testing.assert_array_equal(new.reset_frames, old.reset_frames)
    config = json.loads((tmp_path / "refit" / "release" / "config.json").read_text())
    assert config["steps"] == 2 and config["refit_steps"] == 3  # its training stays on record
    assert set(config["metrics_before_refit"]) == set(config["metrics"])
    card = (tmp_path / "refit" / "release" / "card.md").read_text()
    assert card.startswith("# Diffusion world model") and "## State track refit" in card
    assert "gripper-frame head" in card
    # A refit release refits again, here back to the state MLP alone.
    again = [a if not a.startswith("out=") else f"out={tmp_path / 'again'}" for a in refit]
    again = [
        a if a != f"world_model={source}" else f"world_model={tmp_path / 'refit' / 'release'}"
        for a in again
    ]
    assert main(again + common + ["frame_head=null", "steps=1"]) == 0
    twice = load_world_model(tmp_path / "again" / "release")
    assert twice.dynamics.frame_head is None
    assert (
        json.loads((tmp_path / "again" / "release" / "config.json").read_text())["refit_steps"] == 1
    )
