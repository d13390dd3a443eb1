"""The play server's websocket: hello, frames, settings and clear errors for bad messages
(through FastAPI's test client); a port in use and an unknown world refused."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from cosmos_env.__main__ import cli
from cosmos_env.play.server import PlayConfig, PlayServer, bind, make_app


@pytest.fixture(scope="module")
def client(tiny_world_model_dir):
    with TestClient(make_app(PlayConfig(checkpoint=str(tiny_world_model_dir)))) as client:
        yield client


def _send(ws, message) -> dict:
    ws.send_text(message if isinstance(message, str) else json.dumps(message))
    return ws.receive_json()


def test_the_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "new WebSocket" in page.text


def test_a_connection_says_hello_then_streams_frames(client, tiny_world_model_dir):
    with client.websocket_connect("/ws") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["backends"] == ["diffusion"]
        assert hello["actions"] == ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"]
        assert hello["sources"] == ["simulator", "held-out"] and hello["held_out"] == 6
        assert hello["has_simulator"] and hello["checkpoint"] == str(tiny_world_model_dir)
        first = ws.receive_json()
        assert first["type"] == "frame" and first["t"] == 0
        assert first["world_model"].startswith("data:image/png;base64,")
        step = _send(ws, {"type": "step", "action": [1, 0, 0, 0, 0, 0, 0]})
        assert step["t"] == 1 and step["action"] == [1.0, 0, 0, 0, 0, 0, 0]
        assert step["simulator"] and step["difference"] and step["psnr"] > 0
        reset = _send(ws, {"type": "reset", "source": "held-out", "index": 1})
        assert reset["t"] == 0 and reset["simulator"] is None


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ('{"type": "step", "action": [NaN, 0, 0, 0, 0, 0, 0]}', "not a finite number"),
        ({"type": "step", "action": [None, 0, 0, 0, 0, 0, 0]}, r"action\[0\] is None"),
        ({"type": "jump"}, "unknown message type 'jump'"),
        ("not json", "Expecting value"),
        ("[1, 2]", "must be a JSON object"),
        ({"type": "settings", "backend": "ar"}, "backend 'ar' not on offer here"),
        ({"type": "settings", "sampler_steps": 0}, "sampler_steps must be a whole number"),
    ],
)
def test_a_bad_message_gets_an_error_and_the_connection_stays(client, message, error):
    with client.websocket_connect("/ws") as ws:
        ws.receive_json(), ws.receive_json()
        reply = _send(ws, message)
        assert reply["type"] == "error" and re.search(error, reply["message"])
        assert _send(ws, {"type": "step", "action": [0] * 7})["t"] == 1  # still serving


def test_settings_start_a_new_session(client):
    with client.websocket_connect("/ws") as ws:
        ws.receive_json(), ws.receive_json()
        _send(ws, {"type": "step", "action": [0] * 7})
        hello = _send(ws, {"type": "settings", "sampler_steps": 2})
        assert hello["type"] == "hello" and hello["sampler_steps"] == 2
        assert ws.receive_json()["t"] == 0  # and a fresh start


def test_a_port_in_use_is_refused(tiny_world_model_dir):
    taken = bind("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(ValueError, match=f"cannot listen on 127.0.0.1:{port}.*port=N"):
            PlayServer(PlayConfig(checkpoint=str(tiny_world_model_dir), port=port))
    finally:
        taken.close()


def test_an_unknown_world_is_refused_in_one_line(capsys):
    assert cli(["play", "world=atlantis"]) == 2
    assert "no shipped world model of world 'atlantis'" in capsys.readouterr().err


def test_an_ar_checkpoint_is_offered_under_its_backend_name(tiny_ar_world_model_dir):
    app = make_app(PlayConfig(checkpoint=str(tiny_ar_world_model_dir)))
    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        hello = ws.receive_json()
        assert hello["backends"] == ["ar"] and hello["backend"] == "ar"  # backend=, not kind
        assert ws.receive_json()["type"] == "frame"
        assert _send(ws, {"type": "settings", "backend": "ar"})["type"] == "hello"
