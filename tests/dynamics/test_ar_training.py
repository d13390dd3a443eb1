"""Training the autoregressive world model: token caches loaded as integers, token
windows, TokenDynamics' losses and probe, ``train-dynamics dynamics=ar`` end to end on a
tiny store (release, resume) and its config composition."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import cosmos_env
from cosmos_env import checkpoint
from cosmos_env.__main__ import main, train_dynamics_config
from cosmos_env.config import GenerateConfig, load_config
from cosmos_env.data import EpisodeStore
from cosmos_env.data.state_spec import StateSpec
from cosmos_env.data.world import WorldInfo
from cosmos_env.dynamics.autoregressive import ARConfig, TokenDynamics
from cosmos_env.dynamics.autoregressive.data import TokenWindowBatcher
from cosmos_env.dynamics.autoregressive.train_config import TrainARConfig
from cosmos_env.dynamics.data import LatentEpisodes, load_latent_episodes, select_stores
from cosmos_env.dynamics.diffusion.config import OutcomeHeadsConfig
from cosmos_env.dynamics.diffusion.train_config import TrainDynamicsConfig
from cosmos_env.dynamics.release import RESET_FILE, load_world_model
from cosmos_env.generate import generate
from cosmos_env.tokenizer import Tokenizer, TokenizerConfig
from cosmos_env.tokenizer.cache import load_cache
from cosmos_env.tokenizer.fsq import FSQ
from cosmos_env.tokenizer.release import load_tokenizer, save_tokenizer

LEVELS = [4, 3]  # a 12-token vocabulary keeps the tiny models tiny
TINY_AR = dict(levels=LEVELS, width=16, depth=1, heads=2, probe_width=8)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_tokenizer(directory, seed: int = 0, kind: str = "discrete") -> Tokenizer:
    torch.manual_seed(seed)
    cfg = TokenizerConfig(
        name="DI8x8" if kind == "discrete" else "CI8x8",
        kind=kind,
        fsq_levels=LEVELS,
        channels=[8, 16],
        blocks=[1, 1],
        decoder_blocks=[1, 1],
        groups=4,
        heads=2,
    )
    save_tokenizer(directory, Tokenizer(cfg))
    return load_tokenizer(directory)


def tiny_model(seed: int = 0, **overrides) -> TokenDynamics:
    torch.manual_seed(seed)
    cfg = dict(TINY_AR, latent_size=4, context=2, action_dim=3, state_dim=5)
    return TokenDynamics(ARConfig(**{**cfg, **overrides}))


def toy_episodes(lengths=(3, 5), side: int = 4) -> LatentEpisodes:
    """Row r has every token = r % 12, actions r + 1 and states r, so windows are readable."""
    ends = np.cumsum(lengths)
    n = int(ends[-1])
    rows = np.arange(n)
    return LatentEpisodes(
        latents=np.broadcast_to(rows[:, None, None] % 12, (n, side, side)).astype(np.int32),
        actions=np.repeat(rows[:, None] + 1.0, 3, axis=1).astype(np.float32),
        states=np.repeat(rows[:, None] * 1.0, 5, axis=1).astype(np.float32),
        starts=ends - np.asarray(lengths),
        ends=ends,
    )


# ----- data ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_data(tmp_path_factory):
    """A tiny push store with tokens cached by a tiny discrete tokenizer: (data, tokenizer dir)."""
    root = tmp_path_factory.mktemp("ar_data")
    overrides = [f"out={root / 'data' / 'push.zarr'}", "task=push", "episodes=4", "workers=1"]
    generate(load_config("generate", GenerateConfig, overrides + ["max_steps=6"]))
    tiny_tokenizer(root / "tok")
    assert main(["encode", f"tokenizer={root / 'tok'}", f"data={root / 'data'}"]) == 0
    return root / "data", root / "tok"


def test_token_episodes_keep_integer_indices(token_data):
    data, tok_dir = token_data
    tokenizer = load_tokenizer(tok_dir)
    paths = select_stores(data, "*")
    val = load_latent_episodes(paths, tokenizer, "val", 0.25)
    assert val.latents.dtype == np.int32 and val.latents.shape[1:] == (8, 8)
    store = EpisodeStore.open(paths[0])
    _, (val_ep,) = store.split(0.25, 0)
    lo, hi = store.episode_bounds(int(val_ep))
    np.testing.assert_array_equal(val.latents, load_cache(store, tokenizer)[lo:hi])
    assert 0 <= val.latents.min() and val.latents.max() < math.prod(LEVELS)


def test_token_windows_pad_episode_starts_and_align_states():
    episodes = toy_episodes()
    batcher = TokenWindowBatcher(episodes, context=3)
    assert len(batcher) == 2 + 4  # every row with a successor anchors a window
    b = batcher.batch(np.arange(len(batcher)))
    assert b["tokens"].dtype == torch.int64 and b["tokens"].shape == (6, 4, 4, 4)
    assert b["actions"].shape == (6, 3, 3) and b["states"].shape == (6, 4, 5)
    rows = b["tokens"][:, :, 0, 0]  # (B, F): the row each frame came from
    assert rows[0].tolist() == [0, 0, 0, 1]  # row 0: two padding copies of the first frame
    assert rows[2].tolist() == [3, 3, 3, 4]  # second episode starts at row 3: no leak
    assert rows[5].tolist() == [4, 5, 6, 7]
    assert b["actions"][0, :, 0].tolist() == [0, 0, 1]  # zero actions on padding rows
    assert b["actions"][5, :, 0].tolist() == [5, 6, 7]  # actions[t] taken after frame t
    assert torch.equal(b["states"][..., 0], rows.float())  # states row-aligned, padding too
    early = batcher.sample(8, np.random.default_rng(0), early_fraction=1.0, early_steps=1)
    assert set(early["tokens"][:, -1, 0, 0].tolist()) <= {1, 4}  # anchored at episode starts
    with pytest.raises(ValueError, match="discrete tokenizer"):
        TokenWindowBatcher(
            LatentEpisodes(**{**vars(episodes), "latents": episodes.latents[:, None] * 1.0}), 3
        )


# ----- model -----------------------------------------------------------------------------


def test_codes_follow_the_fsq_convention():
    model = tiny_model(levels=[8, 8, 8, 5, 5, 5])
    tokens = torch.randint(0, 64000, (3, 4, 4))
    expected = FSQ([8, 8, 8, 5, 5, 5]).indices_to_codes(tokens).movedim(-1, 1)
    assert torch.equal(model.codes(tokens), expected)  # (B, 6, h, w) in [-1, 1]


def test_losses_train_transformer_both_decoders_and_probe():
    model = tiny_model()
    episodes = toy_episodes(lengths=(6,))
    batch = TokenWindowBatcher(episodes, context=2).batch(np.arange(5))
    losses = model.losses(**batch, generator=torch.Generator().manual_seed(0))
    expected = {"ce", "z_loss", "accuracy", "probe"}
    assert set(losses) == expected | {f"parallel_{k}" for k in ("ce", "z_loss", "accuracy")}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    assert losses["ce"].item() == pytest.approx(sum(map(math.log, LEVELS)), rel=0.1)
    total = losses["ce"] + losses["parallel_ce"] + losses["probe"]
    total.backward()
    ar = model.transformer
    for p in (ar.digit_embedding.weight, ar.head.weight, ar.mask_embedding):  # [MASK]: parallel
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.probe.parameters())


def test_predict_state_is_in_world_units():
    model = tiny_model().eval()
    g = torch.Generator().manual_seed(0)
    states = torch.randn(50, 5, generator=g) * torch.tensor([1.0, 2, 3, 4, 0]) + 7
    model.set_normalisation(states)
    assert torch.allclose(model.state_mean, states.mean(0))
    assert model.state_std[-1] == pytest.approx(1e-3)  # constant dim: floored, not zero
    tokens = torch.randint(0, 12, (3, 4, 4), generator=g)
    pred = model.predict_state(tokens)
    assert pred.shape == (3, 5)
    standardised = model.probe(model.codes(tokens))
    torch.testing.assert_close(pred, standardised * model.state_std + model.state_mean)


@pytest.mark.parametrize("sampler", ["parallel", "autoregressive"])
def test_predict_next_samples_a_frame_from_the_generator(sampler):
    model = tiny_model().eval()
    g = torch.Generator().manual_seed(0)
    context = torch.randint(0, 12, (2, 2, 4, 4), generator=g)
    actions = torch.rand(2, 2, 3, generator=g) * 2 - 1

    def sample(seed):
        return model.predict_next(context, actions, torch.Generator().manual_seed(seed), 2, sampler)

    out = sample(1)
    assert out.shape == (2, 4, 4) and out.dtype == torch.int64
    assert 0 <= out.min() and out.max() < 12
    assert torch.equal(out, sample(1))
    with pytest.raises(ValueError, match="sampler"):
        model.predict_next(context, actions, sampler="euler")


@pytest.mark.parametrize("sampler", ["parallel", "autoregressive"])
def test_release_temperature_zero_decodes_the_argmax_without_drawing(sampler):
    model = tiny_model(temperature=0.0).eval()
    with torch.no_grad():  # sharper logits than a fresh init, so the argmax is unambiguous
        for p in model.parameters():
            p.mul_(4.0)
    g = torch.Generator().manual_seed(0)
    context = torch.randint(0, 12, (2, 2, 4, 4), generator=g)
    actions = torch.rand(2, 2, 3, generator=g) * 2 - 1
    gen = torch.Generator().manual_seed(5)
    before = gen.get_state()
    greedy = model.predict_next(context, actions, gen, 2, sampler)
    assert torch.equal(gen.get_state(), before)  # nothing drawn
    assert torch.equal(greedy, model.predict_next(context, actions, None, 2, sampler))
    # An explicit temperature overrides the release's.
    hot = [
        model.predict_next(
            context, actions, torch.Generator().manual_seed(s), 2, sampler, temperature=5.0
        )
        for s in range(3)
    ]
    assert any(not torch.equal(h, greedy) for h in hot)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        tiny_model(temperature=-1.0)


# ----- training --------------------------------------------------------------------------


def ar_args(data, tok_dir, out, steps: int = 4) -> list[str]:
    return [
        "train-dynamics",
        "dynamics=ar",
        *[f"dynamics.{k}={v}" for k, v in TINY_AR.items()],
        f"steps={steps}",
        "batch_size=4",
        "warmup_steps=2",
        "eval_every=2",
        "save_every=2",
        "eval_windows=8",
        "sampler_steps=2",
        "reset_frames=2",
        "val_fraction=0.25",
        "threads=1",
        f"tokenizer={tok_dir}",
        f"data={data}",
        "stores=*",
        f"out={out}",
    ]


def test_train_ar_command_releases_and_resumes(token_data, tmp_path, capsys):
    data, tok_dir = token_data
    out = tmp_path / "run"
    assert main(ar_args(data, tok_dir, out)) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 4
    keys = {"ce", "accuracy", "parallel_ce", "probe_cube_cm", "sampled_accuracy", "cube_cm_next"}
    keys |= {"probe_state_std_err", "state_std_err_next", "probe_gripper_cm", "gripper_cm_next"}
    assert keys <= set(result) and all(np.isfinite(result[k]) for k in keys)
    log = (out / "train.log").read_text()
    assert "finished: 4 steps" in log and "step 2 eval (EMA)" in log
    release = out / "release"
    config = json.loads((release / "config.json").read_text())
    assert config["dynamics"]["kind"] == "autoregressive" and config["dynamics"]["width"] == 16
    tokenizer = load_tokenizer(tok_dir)
    assert config["tokenizer"]["checksum"] == tokenizer.checksum
    assert config["tokenizer"]["name"] == "DI8x8"
    assert config["sampler"] == {"name": "parallel", "steps": 2}
    assert config["steps"] == 4 and "ce" in config["metrics"]
    # The world (name, action and state specs) comes from the stores; the model carries
    # the state spec that names its probe's positions.
    store = EpisodeStore.open(select_stores(data, "*")[0])
    world = WorldInfo.from_dict(config["world"])
    assert world.name == "tabletop-push" and world.description == store.world_description
    assert (world.action_spec, world.state_spec) == (store.action_spec, store.state_spec)
    assert StateSpec.from_dict(config["dynamics"]["state_spec"]) == store.state_spec
    assert np.load(release / RESET_FILE)["frames"].shape == (1, 64, 64, 3)  # 1 val episode
    assert "Autoregressive world model" in (release / "card.md").read_text()
    model = TokenDynamics(ARConfig.from_dict(config["dynamics"]))
    checkpoint.load_weights(release, model)  # the release rebuilds from its own config
    assert not torch.equal(model.state_std, torch.ones(36))  # stats travel with the weights

    assert main(ar_args(data, tok_dir, out, steps=6)) == 0
    log = (out / "train.log").read_text()
    assert "resumed from step 4" in log and "finished: 6 steps" in log
    assert json.loads((release / "config.json").read_text())["steps"] == 6


def test_train_ar_fills_the_state_track_from_the_roles_and_refits_it(token_data, tmp_path, capsys):
    """The AR release carries the shared state track, its parts switched on from the
    store's StateSpec roles as for diffusion, and refit-state-track retrains only it."""
    data, tok_dir = token_data
    out = tmp_path / "run"
    assert main(ar_args(data, tok_dir, out, steps=2)) == 0
    capsys.readouterr()
    config = json.loads((out / "release" / "config.json").read_text())
    track = config["dynamics"]["state_track"]
    assert track["integrator"] == {"slot": "gripper_pos"}
    assert track["contact"]["slots"] and track["keypoints"]["camera"]
    assert track["frame_head"]["quat"] == "gripper_quat"
    assert "reward" in config["outcomes"]  # the heads learn what the store records
    refit = ["refit-state-track", f"world_model={out / 'release'}", "steps=2", "batch_size=8"]
    refit += [f"data={data}", "stores=*", "val_fraction=0.25", "threads=1", "eval_windows=4"]
    refit += ["warmup_steps=1", "frame_head=null", f"out={tmp_path / 'refit'}"]
    assert main(refit) == 0
    result = json.loads(capsys.readouterr().out)
    assert "cube_cm_next" in result["after"] and "ce" in result["before"]
    old = load_world_model(out / "release").dynamics
    new = load_world_model(tmp_path / "refit" / "release").dynamics
    assert isinstance(new, TokenDynamics) and new.frame_head is None
    before, after = old.state_dict(), new.state_dict()
    for key, value in before.items():
        if key.startswith(("transformer.", "probe.")):
            torch.testing.assert_close(after[key], value)  # only the track is new
    assert not torch.equal(
        after["state_dynamics.net.0.weight"], before["state_dynamics.net.0.weight"]
    )


def test_train_ar_refuses_a_tokenizer_that_does_not_fit(token_data, tmp_path):
    data, tok_dir = token_data
    args = ar_args(data, tok_dir, tmp_path / "run")
    levels = [a if not a.startswith("dynamics.levels") else "dynamics.levels=[8,5]" for a in args]
    with pytest.raises(ValueError, match=r"levels=\[8, 5\] but .* fsq_levels \[4, 3\]"):
        main(levels)
    continuous = tiny_tokenizer(tmp_path / "ci", kind="continuous").source
    with pytest.raises(ValueError, match="continuous tokenizer"):
        main([a if not a.startswith("tokenizer=") else f"tokenizer={continuous}" for a in args])


def test_train_dynamics_dispatches_on_the_dynamics_group():
    cfg = train_dynamics_config(["dynamics=ar"])
    assert isinstance(cfg, TrainARConfig) and isinstance(cfg.dynamics, ARConfig)
    assert (cfg.tokenizer, cfg.batch_size, cfg.lr, cfg.max_minutes) == ("DI8x8", 32, 6e-4, 45.0)
    # conf/train_ar.yaml and the dataclass agree; conf/dynamics/ar.yaml lists every field.
    assert {**vars(cfg), "dynamics": None} == {**vars(TrainARConfig()), "dynamics": None}
    yaml = OmegaConf.load(Path(cosmos_env.__file__).parent / "conf" / "dynamics" / "ar.yaml")
    assert set(yaml) == set(ARConfig.__dataclass_fields__)
    assert cfg.dynamics.to_dict() == ARConfig.from_dict(OmegaConf.to_container(yaml)).to_dict()
    params = dict(TokenDynamics(cfg.dynamics).named_parameters())
    frames = sum(p.numel() for n, p in params.items() if n.startswith(("transformer.", "probe.")))
    assert 3.0e6 < frames < 3.5e6  # transformer and probe: about 6.4 MB in float16
    assert sum(p.numel() for p in params.values()) < 4.5e6  # with the track and the heads
    cfg = train_dynamics_config(["dynamics=ar", "tokenizer=/some/DI", "dynamics.depth=2"])
    assert cfg.tokenizer == "/some/DI" and cfg.dynamics.depth == 2
    cfg = train_dynamics_config(["tokenizer=CI8x8"])
    assert isinstance(cfg, TrainDynamicsConfig) and cfg.dynamics.kind == "diffusion"
    # The world comes from the stores, not a task; the diffusion config names no slots of
    # one world: the state-track features are filled in from the stores' StateSpec roles.
    assert not hasattr(cfg, "task") and not hasattr(TrainARConfig(), "task")
    assert cfg.state_features == ["integrator", "contact", "keypoints", "frame_head"]
    d = cfg.dynamics
    track = d.state_track
    assert (track.integrator, track.contact, track.keypoints, track.frame_head) == (None,) * 4
    assert d.state_spec is None and d.outcome_heads == OutcomeHeadsConfig(256)
