"""The world-model backends side by side: fidelity, state error, speed and size in one table.

    python benchmarks/backends.py [--out DIR]

Reads ``DIR/fidelity.json`` and ``DIR/env_speed.json`` (run ``fidelity.py`` and
``env_speed.py`` with the same ``--out`` first) and writes ``DIR/backends.json`` and
``DIR/backends.md``: one row per backend and decoder (the diffusion model's default
sampler; the AR model's parallel and token-by-token decoders), with PSNR at h1, mean over
h1-16 and at h16 (all starts), the cube-position error at h16, the vector env's frames/s at
batch 1 and 64 beside MuJoCo's, parameters and the size of the weights on disk.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cosmos_env.eval.media import markdown_table
from cosmos_env.machine import machine_info

COLUMNS = (
    "backend (decoder)",
    "PSNR h1",
    "PSNR mean h1-16",
    "PSNR h16",
    "copy-last h16",
    "cube err h16 (cm)",
    "env fps b1",
    "env fps b64",
    "b64 vs MuJoCo",
    "params (M)",
    "weights (MB)",
)


def _weights_mb(checkpoint: str) -> float | None:
    path = Path(checkpoint) / "model.safetensors"
    return path.stat().st_size / 1e6 if path.exists() else None


def compare_backends(fidelity: dict, speed: dict) -> list[dict]:
    """One record per backend and decoder scored in both reports."""
    records = []
    for backend in fidelity["backends"]:
        if backend not in speed.get("backends", []):
            raise ValueError(
                f"env_speed.json has no {backend!r} entry (it has {speed.get('backends')}): "
                "run fidelity.py and env_speed.py on the same checkpoints"
            )
        fid, fast = fidelity[backend], speed[backend]
        variants = [(fid["sampler"], fid, fast)]
        for sampler, alt in fid.get("decoders", {}).items():
            if sampler not in fast.get("decoders", {}):
                raise ValueError(f"env_speed.json has no {backend}.decoders.{sampler} entry")
            variants.append((sampler, alt, fast["decoders"][sampler]))
        for sampler, f, s in variants:
            records.append(
                {
                    "backend": backend,
                    "sampler": sampler,
                    "sampler_steps": f["sampler_steps"],
                    "psnr_h1": f["psnr_h1"],
                    "psnr_mean_h1_16": f["psnr_mean_h1_16"],
                    "psnr_h16": f["psnr_h16"],
                    "copy_last_psnr_h16": f["copy_last_psnr_h16"],
                    # fidelity results before issue 18 called it state_err_h16_cm
                    "cube_err_h16_cm": f.get("cube_err_h16_cm", f.get("state_err_h16_cm")),
                    "fps_b1": s["fps_b1"],
                    "fps_b64": s["fps_b64"],
                    "ratio_b64": s["ratio_b64"],
                    "parameters": fid["parameters"],
                    "weights_mb": _weights_mb(fid["checkpoint"]),
                }
            )
    return records


def _row(r: dict) -> list:
    steps = f" x{r['sampler_steps']}" if r["sampler"] != "autoregressive" else ""
    return [
        f"{r['backend']} ({r['sampler']}{steps})",
        r["psnr_h1"],
        r["psnr_mean_h1_16"],
        r["psnr_h16"],
        r["copy_last_psnr_h16"],
        r["cube_err_h16_cm"],
        r["fps_b1"],
        r["fps_b64"],
        r["ratio_b64"],
        r["parameters"] / 1e6,
        "-" if r["weights_mb"] is None else r["weights_mb"],
    ]


def write(records: list[dict], fidelity: dict, speed: dict, out: Path) -> str:
    """backends.json and backends.md in ``out``; returns the markdown."""
    text = (
        f"World-model backends on tabletop push: fidelity over {fidelity['held_out_episodes']} "
        f"held-out episodes (seed {fidelity['seed']}, all window starts {fidelity['starts']}), "
        f"env frames/s beside MuJoCo's {speed['mujoco_fps']:.0f} (one process, same run as "
        "the world models). Weights are the dynamics model's file; the tokenizer is shared "
        "in size class (CI8x8 / DI8x8).\n\n"
        + markdown_table(list(COLUMNS), [_row(r) for r in records])
        + "\n"
    )
    out.mkdir(parents=True, exist_ok=True)
    # The machine blocks of the two runs these rows come from, beside the rows themselves.
    machines = {"fidelity": fidelity.get("machine"), "env_speed": speed.get("machine")}
    result = {"machine": machine_info(), "source_machines": machines, "records": records}
    (out / "backends.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "backends.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    args = parser.parse_args()
    reports = {}
    for name in ("fidelity", "env_speed"):
        path = args.out / f"{name}.json"
        if not path.exists():
            raise SystemExit(f"{path} is missing: run benchmarks/{name}.py --out {args.out}")
        reports[name] = json.loads(path.read_text())
    records = compare_backends(reports["fidelity"], reports["env_speed"])
    print(write(records, reports["fidelity"], reports["env_speed"], args.out))


if __name__ == "__main__":
    main()
