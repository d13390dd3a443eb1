"""Frames per second of ``python -m cosmos_env play`` as a person sees them: the page in
headless Chromium, running as fast as it can (rate 0), counting the frames it receives.

    python benchmarks/play_speed.py [--quick] [--out DIR] [--worlds NAME ...]
                                    [--backends diffusion ar] [--seconds S]

For each shipped world (default: every one) and backend shipped for it, the server runs the
world model at batch 1 and, where the world has one, its simulator under the same actions
(as the page does by default); the page's frames/s are counted over ``--seconds`` after a
warm-up. ``fps`` counts frames received by the page; ``ms_per_frame`` is its inverse.
Writes DIR/play_speed.json and DIR/play_speed.md. Needs Debian's chromium and chromedriver.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cosmos_env.dynamics.release import shipped_catalogue
from cosmos_env.eval.media import markdown_table
from cosmos_env.machine import machine_info, machine_line
from cosmos_env.play.browser import headless_chromium, wait_for
from cosmos_env.play.server import PlayConfig, PlayServer


def page_fps(driver, cfg: PlayConfig, seconds: float, warmup: float) -> dict:
    """Serve ``cfg``, run the page at full rate; frames/s received after ``warmup`` s."""
    server = PlayServer(cfg).start()
    try:
        driver.get(server.url)
        wait_for(driver, "window.play.last && window.play.last.t === 0", 120)
        driver.execute_script("document.getElementById('rate').value = 0;")
        driver.find_element("id", "run").click()
        time.sleep(warmup)
        start_frames, start = driver.execute_script("return window.play.frames;"), time.time()
        time.sleep(seconds)
        frames, elapsed = driver.execute_script("return window.play.frames;"), time.time() - start
        driver.find_element("id", "run").click()
        errors = driver.execute_script("return window.play.errors;")
    finally:
        server.stop()
    fps = (frames - start_frames) / elapsed
    return {"fps": fps, "ms_per_frame": 1000.0 / fps if fps else None, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="push only, 4 s per run")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--worlds", nargs="+", default=None, help="default: every shipped world")
    parser.add_argument("--backends", nargs="+", default=["diffusion", "ar"])
    parser.add_argument("--seconds", type=float, default=None, help="default 15 (quick: 4)")
    args = parser.parse_args()
    catalogue = shipped_catalogue()
    worlds = args.worlds or (["tabletop-push"] if args.quick else sorted(catalogue))
    seconds = args.seconds or (4.0 if args.quick else 15.0)
    results: dict = {"quick": args.quick, "machine": machine_info(), "seconds": seconds}
    results["runs"] = {}
    driver = headless_chromium()
    try:
        for world in worlds:
            for backend in [b for b in args.backends if b in catalogue[world]]:
                cfg = PlayConfig(world=world, backend=backend, port=0)
                print(f"[play_speed] {world} {backend}", flush=True)
                run = page_fps(driver, cfg, seconds, warmup=2.0)
                results["runs"][f"{world}.{backend}"] = run
    finally:
        driver.quit()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "play_speed.json").write_text(json.dumps(results, indent=2))
    rows = [
        [name, f"{r['fps']:.1f}", f"{r['ms_per_frame']:.0f}", len(r["errors"])]
        for name, r in results["runs"].items()
    ]
    table = markdown_table(["world.backend", "frames/s in the page", "ms/frame", "errors"], rows)
    machine = machine_line(results["machine"])
    text = f"# play speed (batch 1, page at full rate)\n\n{machine}\n\n{table}\n"
    (args.out / "play_speed.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
