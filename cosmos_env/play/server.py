"""The play page and its websocket: a small ASGI app (FastAPI) that uvicorn serves on
localhost. One websocket is one ``PlaySession``; the page sends JSON messages and gets a
frame (or an error) back for each:

- ``{"type": "step", "action": [a_0, ..., a_{A-1}]}``, each in [-1, 1];
- ``{"type": "reset", "source": "simulator" | "held-out", "index": k}`` (a reset seed, or
  the index of a held-out frame);
- ``{"type": "settings", "backend": name, "sampler_steps": n}``: a new session.

Replies: ``{"type": "hello", ...}`` once (action names, starts, backends), then
``{"type": "frame", ...}`` (PNG data URLs, t, reward, PSNR against the simulator) or
``{"type": "error", "message": ...}``; a bad message never closes the connection.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse

from cosmos_env.dynamics.backends import backend_of_kind
from cosmos_env.dynamics.release import shipped_catalogue
from cosmos_env.envs.core import env_world_model
from cosmos_env.play.session import PlaySession, Step

PAGE = Path(__file__).with_name("page.html")


@dataclass
class PlayConfig:
    """``python -m cosmos_env play``: which world model, and where the page is served."""

    checkpoint: str | None = None  # a release directory; else the shipped model of `world`
    world: str | None = "tabletop-push"  # a shipped world (ignored with a checkpoint)
    backend: str | None = None  # diffusion | ar (default: the checkpoint's, or diffusion)
    sampler_steps: int | None = None  # null: the release's default
    host: str = "127.0.0.1"  # localhost only unless you mean it
    port: int = 8765
    rate: float = 15.0  # the page's default steps per second while running (0: as fast as it can)


OpenSession = Callable[[str | None, int | None], PlaySession]


def session_factory(cfg: PlayConfig) -> tuple[OpenSession, list[str], str]:
    """A function (backend, sampler_steps) -> a new session, the backends on offer (the
    checkpoint's own, or those shipped for ``cfg.world``) and the one to start with. Builds
    one session first, so an unknown world or checkpoint fails here with its message."""
    world = None if cfg.checkpoint else cfg.world

    def open_session(backend: str | None, sampler_steps: int | None) -> PlaySession:
        wm = env_world_model(world, cfg.checkpoint, backend or cfg.backend, None)
        return PlaySession(wm, sampler_steps)

    first = open_session(None, cfg.sampler_steps)
    kind = getattr(first.world_model.dynamics.cfg, "kind", "diffusion")
    first.close()
    backend = backend_of_kind(kind).name  # the name backend= takes ("ar"), not the kind
    backends = [backend] if cfg.checkpoint else sorted(shipped_catalogue()[world])
    return open_session, backends, backend


def data_url(frame: np.ndarray | None) -> str | None:
    """uint8 (H, W, 3) RGB -> a PNG data URL the page can show."""
    if frame is None:
        return None
    ok, png = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")


def frame_message(step: Step) -> dict:
    return {
        "type": "frame",
        "t": step.t,
        "world_model": data_url(step.world_model),
        "simulator": data_url(step.simulator),
        "difference": data_url(step.difference),
        "action": step.action,
        "reward": step.reward,
        "simulator_reward": step.simulator_reward,
        "psnr": step.psnr,
        "success": step.success,
    }


def hello_message(session: PlaySession, backends: list[str], backend: str, rate: float) -> dict:
    wm = session.world_model
    return {
        "type": "hello",
        "world": wm.world.name,
        "checkpoint": str(wm.source),
        "actions": session.action_names,
        "sources": session.sources,
        "held_out": session.held_out,
        "has_simulator": session.sim is not None,
        "backends": backends,
        "backend": backend,
        "sampler_steps": session.sampler_steps,
        "rate": rate,
        "image_size": wm.image_size,
    }


class Connection:
    """The session behind one websocket and what its messages do to it."""

    def __init__(
        self, open_session: OpenSession, backends: list[str], backend: str, cfg: PlayConfig
    ) -> None:
        self.open_session, self.backends, self.cfg = open_session, backends, cfg
        self.backend = backend
        self.session = open_session(self.backend, cfg.sampler_steps)

    def start(self) -> list[dict]:
        hello = hello_message(self.session, self.backends, self.backend, self.cfg.rate)
        return [hello, frame_message(self.session.reset(self.session.sources[0], 0))]

    def handle(self, text: str) -> list[dict]:
        """The replies to one message; a ValueError becomes an error reply."""
        try:
            message = json.loads(text)
            if not isinstance(message, dict):
                raise ValueError(f"a message must be a JSON object, got {text[:80]!r}")
            kind = message.get("type")
            if kind == "step":
                return [frame_message(self.session.step(message.get("action")))]
            if kind == "reset":
                source = message.get("source", self.session.sources[0])
                return [frame_message(self.session.reset(source, message.get("index", 0)))]
            if kind == "settings":
                return self._settings(message)
            raise ValueError(f"unknown message type {kind!r}; send step, reset or settings")
        except (ValueError, json.JSONDecodeError) as error:
            return [{"type": "error", "message": str(error)}]

    def _settings(self, message: dict) -> list[dict]:
        backend = message.get("backend", self.backend)
        if backend not in self.backends:
            raise ValueError(f"backend {backend!r} not on offer here; choose from {self.backends}")
        session = self.open_session(backend, message.get("sampler_steps"))
        self.session.close()
        self.session, self.backend = session, backend
        return self.start()

    def close(self) -> None:
        self.session.close()


def make_app(cfg: PlayConfig) -> FastAPI:
    """The page at ``/`` and one session per websocket at ``/ws``."""
    open_session, backends, backend = session_factory(cfg)
    app = FastAPI(title="cosmos-env play")

    @app.get("/")
    def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text())

    @app.websocket("/ws")
    async def play(websocket: WebSocket) -> None:
        await websocket.accept()
        # One thread per connection: the simulator's GL context belongs to the thread that
        # made it, and the event loop stays free while a frame is predicted.
        worker = ThreadPoolExecutor(1, thread_name_prefix="play-session")
        loop = asyncio.get_running_loop()

        def run(fn, *args):
            return loop.run_in_executor(worker, fn, *args)

        connection = await run(Connection, open_session, backends, backend, cfg)
        try:
            for reply in await run(connection.start):
                await websocket.send_json(reply)
            while True:
                text = await websocket.receive_text()
                for reply in await run(connection.handle, text):
                    await websocket.send_json(reply)
        except WebSocketDisconnect:
            pass
        finally:
            await run(connection.close)
            worker.shutdown()

    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or a ValueError when the port is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ValueError(
            f"cannot listen on {host}:{port} ({error.strerror}): the port is in use or not "
            "yours; pass port=N for another one"
        ) from error
    sock.listen(16)
    return sock


class PlayServer:
    """The app on a socket bound now; ``run()`` serves in this thread (the command),
    ``start()`` / ``stop()`` in a background one (tests, benchmarks)."""

    def __init__(self, cfg: PlayConfig) -> None:
        app = make_app(cfg)
        self.socket = bind(cfg.host, cfg.port)
        host, port = self.socket.getsockname()[:2]
        self.url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", ws="websockets-sansio")
        )
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        self.server.run(sockets=[self.socket])

    def start(self) -> PlayServer:
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        while not self.server.started and self._thread.is_alive():
            self._thread.join(0.05)
        if not self.server.started:
            raise RuntimeError("the play server did not start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self.socket.close()


def play(cfg: PlayConfig) -> dict:
    """Serve the play page until interrupted; print its address first."""
    server = PlayServer(cfg)
    print(f"play: open {server.url} (Ctrl-C stops)", flush=True)
    server.run()
    return {"url": server.url}
