import os
from pathlib import Path

# Headless rendering for every test, whatever the caller's shell says.
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


def tabletop_world_info(task: str = "push"):
    """The `WorldInfo` of a tabletop task (what a release records of its world)."""
    from cosmos_env.data.world import WorldInfo
    from cosmos_env.sim.worlds import tabletop_world

    w = tabletop_world(task)
    return WorldInfo(w.name, w.describe(), w.max_episode_steps, w.action_spec, w.state_spec)


def make_tiny_world_model(directory, seed: int = 0, state_track: bool = True):
    """A tiny random tokenizer (CI8x8 layout) and a tiny diffusion dynamics model paired
    with it (with a state track, as the shipped model, unless ``state_track`` is False),
    released under ``directory``; returns the dynamics release directory."""
    from cosmos_env.dynamics.diffusion.config import DiffusionConfig
    from cosmos_env.dynamics.diffusion.model import LatentDynamics
    from cosmos_env.dynamics.release import save_world_model
    from cosmos_env.tokenizer import Tokenizer, TokenizerConfig
    from cosmos_env.tokenizer.release import load_tokenizer, save_tokenizer

    torch.manual_seed(seed)
    tok_cfg = TokenizerConfig(
        channels=[8, 16], blocks=[1, 1], decoder_blocks=[1, 1], groups=4, heads=2
    )
    save_tokenizer(directory / "tokenizer", Tokenizer(tok_cfg))
    tokenizer = load_tokenizer(directory / "tokenizer")
    cfg = DiffusionConfig.from_dict(
        dict(
            width=32,
            depth=1,
            heads=2,
            adaln_rank=8,
            probe_width=8,
            state_track=state_track,
            state_width=16,
        )
    )
    dyn = LatentDynamics(cfg)
    with torch.no_grad():  # zero-initialised output layers would make every frame the same
        for p in dyn.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    states = rng.normal(size=(6, 36)).astype(np.float32)
    return save_world_model(
        directory / "dynamics", dyn, tokenizer, tabletop_world_info(), "euler", 1, frames, states
    )


def make_tiny_ar_world_model(directory, seed: int = 0, state_track: bool = False):
    """A tiny random discrete tokenizer (DI8x8 layout, 12 tokens) and a tiny autoregressive
    token model paired with it (with a state track where ``state_track``); returns the
    release directory."""
    from cosmos_env.dynamics.autoregressive.config import ARConfig
    from cosmos_env.dynamics.autoregressive.model import TokenDynamics
    from cosmos_env.dynamics.release import save_world_model
    from cosmos_env.dynamics.track_config import StateTrackConfig
    from cosmos_env.tokenizer import Tokenizer, TokenizerConfig
    from cosmos_env.tokenizer.release import load_tokenizer, save_tokenizer

    torch.manual_seed(seed)
    levels = [4, 3]
    tok_cfg = TokenizerConfig(
        name="DI8x8",
        kind="discrete",
        fsq_levels=levels,
        channels=[8, 16],
        blocks=[1, 1],
        decoder_blocks=[1, 1],
        groups=4,
        heads=2,
    )
    save_tokenizer(directory / "tokenizer", Tokenizer(tok_cfg))
    tokenizer = load_tokenizer(directory / "tokenizer")
    track = StateTrackConfig(width=16) if state_track else None
    cfg = ARConfig(levels=levels, width=16, depth=1, heads=2, probe_width=8, state_track=track)
    dyn = TokenDynamics(cfg)
    with torch.no_grad():
        for p in dyn.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    states = rng.normal(size=(6, 36)).astype(np.float32)
    return save_world_model(
        directory / "dynamics",
        dyn,
        tokenizer,
        tabletop_world_info(),
        "parallel",
        2,
        frames,
        states,
    )


@pytest.fixture(scope="session")
def tiny_ar_world_model_dir(tmp_path_factory):
    """Release directory of a tiny random autoregressive world model."""
    return make_tiny_ar_world_model(tmp_path_factory.mktemp("tiny_ar_world_model"))


@pytest.fixture(scope="session")
def tiny_ar_track_world_model_dir(tmp_path_factory):
    """Release directory of a tiny random autoregressive world model with a state track."""
    directory = tmp_path_factory.mktemp("tiny_ar_track_world_model")
    return make_tiny_ar_world_model(directory, state_track=True)


INSTRUCT_RED = "put the red cube in the yellow bowl"
INSTRUCT_BLUE = "push the blue cylinder into the green zone"


def make_tiny_instruct_world_model(directory, seed: int = 0, actions: bool = True):
    """A tiny random diffusion release of the instructed tabletop (3 objects) that reads
    instructions (its vocabulary: the instructions of 20 resets and the two above), with
    reset frames and states from the simulator (``actions=False``: an instruction->video
    model that reads no actions); returns the release directory."""
    from cosmos_env.data.world import WorldInfo
    from cosmos_env.dynamics.diffusion.config import DiffusionConfig
    from cosmos_env.dynamics.diffusion.model import LatentDynamics
    from cosmos_env.dynamics.release import save_world_model
    from cosmos_env.sim.worlds import tabletop_world
    from cosmos_env.text.vocabulary import Vocabulary
    from cosmos_env.tokenizer import Tokenizer, TokenizerConfig
    from cosmos_env.tokenizer.release import load_tokenizer, save_tokenizer

    world = tabletop_world("instruct", 3)
    resets = [world.reset(s, 64) for s in range(3)]
    frames, states = np.stack([f for f, _ in resets]), np.stack([s for _, s in resets])
    env = world.make_env(64)
    texts = [env.reset(seed=s)[1]["instruction"] for s in range(20)]
    env.close()
    torch.manual_seed(seed)
    tok_cfg = TokenizerConfig(
        channels=[8, 16], blocks=[1, 1], decoder_blocks=[1, 1], groups=4, heads=2
    )
    save_tokenizer(directory / "tokenizer", Tokenizer(tok_cfg))
    tokenizer = load_tokenizer(directory / "tokenizer")
    words = list(Vocabulary.from_texts([INSTRUCT_RED, INSTRUCT_BLUE, *texts]).words)
    cfg = DiffusionConfig.from_dict(
        dict(
            net={"width": 32, "depth": 1, "heads": 2, "adaln_rank": 8},
            probe_width=8,
            state_dim=states.shape[1],
            state_spec=world.state_spec.to_dict(),
            state_track={"width": 16},
            text={"encoder": {"width": 16, "depth": 1, "heads": 2}, "words": words},
            actions=actions,
        )
    )
    dyn = LatentDynamics(cfg)
    with torch.no_grad():
        for p in dyn.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    info = WorldInfo(world.name, world.describe(), 40, world.action_spec, world.state_spec)
    return save_world_model(
        directory / "dynamics", dyn, tokenizer, info, "euler", 1, frames, states
    )


@pytest.fixture(scope="session")
def tiny_instruct_world_model_dir(tmp_path_factory):
    """Release directory of a tiny random instruction-following world model."""
    return make_tiny_instruct_world_model(tmp_path_factory.mktemp("tiny_instruct_model"))


@pytest.fixture(scope="session")
def tiny_world_model_dir(tmp_path_factory):
    """Release directory of a tiny random world model (dynamics + its tokenizer)."""
    return make_tiny_world_model(tmp_path_factory.mktemp("tiny_world_model"))


@pytest.fixture(scope="session")
def tiny_probe_world_model_dir(tmp_path_factory):
    """A tiny random world model without a state track: the probe reads its states."""
    return make_tiny_world_model(tmp_path_factory.mktemp("tiny_probe_model"), state_track=False)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module of tiny-model tests, restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance (2 CPUs) for the whole session: starting one takes seconds,
    and the executors use an open session as is. Its workers find the test modules that
    jobs are mapped from (tests/ joins their sys.path)."""
    ray = pytest.importorskip("ray", reason="the executor=ray tests need Ray: pip install ray")
    from ray.job_config import JobConfig

    tests = str(Path(__file__).parent)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        job_config=JobConfig(code_search_path=[tests]),
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_action_free_instruct_dir(tmp_path_factory):
    """Release directory of a tiny random instruction->video model (no actions)."""
    directory = tmp_path_factory.mktemp("tiny_action_free_model")
    return make_tiny_instruct_world_model(directory, actions=False)
