"""Store faults: damage chunk files and count what the public API makes of it; what the
checksums cost.

    python benchmarks/store_faults.py [--quick] [--out DIR]

Generates a scripted push store with `cosmos_env.generate` (20 episodes, 8 with --quick;
one worker) and a copy of it without checksums (the layout of stores written before them:
no crc32c codec, chunks equal to the fill value not stored). On each store it injects 120
faults (36 with --quick), one at a time, restoring the chunk afterwards: delete the chunk
file, truncate it to a random length, or flip 1-4 random bytes, in a chunk of every data and
meta array in turn. After each fault it opens the store and reads the chunk's rows through
the public API (get_rows, get_frames, load_episode, get_window; instruction, source_id,
episode_ends for the meta arrays), and counts each fault as `detected` (a StoreError that
names the chunk's file), `unnamed_error` (any other error), `silently_wrong` (data returned
that differs from the original) or `read_correctly`; `verify_found` counts the faults that
`EpisodeStore.verify` lists (or that fail the open with the file named).

Costs, measured side by side: reading every row of every key (and a sampler-style gather of
64 windows of 16 frames) from the store with checksums vs the copy without, in alternating
rounds (median); appending episodes to each; `verify`'s seconds per GB on the healthy store.
Writes DIR/store_faults.json and DIR/store_faults.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import google_crc32c
import numpy as np
import zarr

from cosmos_env.config import GenerateConfig, load_config
from cosmos_env.data import EpisodeStore, NoChecksumWarning, StoreError
from cosmos_env.eval.media import markdown_table
from cosmos_env.generate import generate
from cosmos_env.machine import machine_info

ROOT = Path(__file__).resolve().parent.parent
HELPERS = ROOT / "tests" / "data" / "conftest.py"  # strip_checksums: the old layout
KINDS = ("delete", "truncate", "flip")
APIS = ("get_rows", "get_frames", "load_episode", "get_window")
OUTCOMES = ("detected", "unnamed_error", "silently_wrong", "read_correctly")


def strip_checksums(path: Path) -> None:
    spec = importlib.util.spec_from_file_location("data_test_helpers", HELPERS)
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    helpers.strip_checksums(path)


def open_store(path: Path, mode: str = "r") -> EpisodeStore:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoChecksumWarning)
        return EpisodeStore.open(path, mode)


def chunk_files(path: Path) -> dict[str, list[Path]]:
    """Chunk files of every data and meta array, by array ("data/rgb", ...)."""
    arrays = [p for group in ("data", "meta") for p in sorted((path / group).iterdir())]
    found = {
        f"{a.parent.name}/{a.name}": sorted(p for p in (a / "c").rglob("*") if p.is_file())
        for a in arrays
        if (a / "c").is_dir()
    }
    return {name: files for name, files in found.items() if files}


def inject(file: Path, kind: str, rng: np.random.Generator) -> None:
    raw = bytearray(file.read_bytes())
    if kind == "delete":
        file.unlink()
    elif kind == "truncate":
        file.write_bytes(bytes(raw[: int(rng.integers(0, len(raw)))]))
    else:
        for pos in rng.choice(len(raw), size=min(len(raw), int(rng.integers(1, 5))), replace=False):
            raw[pos] ^= int(rng.integers(1, 256))
        file.write_bytes(bytes(raw))


def chunk_rows(array: str, file: Path, original: EpisodeStore) -> tuple[int, int]:
    """Rows [start, end) that the chunk file holds (its first index along time)."""
    size = zarr.open_array(str(original.path / array), mode="r").chunks[0]
    c = int(file.relative_to(original.path / array / "c").parts[0])
    n = original.n_episodes if array.startswith("meta/") else original.n_frames
    return c * size, min((c + 1) * size, n)


def read_back(store: EpisodeStore, array: str, rows: tuple[int, int], api: str, want: dict):
    """(got, expected) for the rows of the damaged chunk, read with `api`."""
    a, b = rows
    if array.startswith("meta/"):
        name = array.split("/")[1]
        if name == "episode_ends":
            return store.episode_ends, want["episode_ends"]
        get = store.instruction if name == "instruction" else store.source_id
        return [get(i) for i in range(a, b)], want[name][a:b]
    key = array.split("/")[1]
    episode = int(np.searchsorted(want["episode_ends"], a, side="right"))
    first, end = store.episode_bounds(episode)
    if api == "get_rows":
        return store.get_rows(a, b, [key])[key], want[key][a:b]
    if api == "get_frames":
        rows_ = np.arange(a, b)[::-1]
        return store.get_frames(rows_, [key])[key], want[key][rows_]
    if api == "load_episode":
        return store.load_episode(episode, [key])[key], want[key][first:end]
    n = min(b, end) - a
    return store.get_window(episode, a - first, n, [key])[key], want[key][a : a + n]


def run_fault(path: Path, array: str, file: Path, kind: str, api: str, rng, original, want):
    """Inject one fault, read its rows back, run verify; restore the chunk. -> record."""
    saved = file.read_bytes()
    inject(file, kind, rng)
    rows = chunk_rows(array, file, original)
    record = {"array": array, "file": str(file.relative_to(path)), "kind": kind, "api": api}
    try:
        try:
            store = open_store(path)
            got, expected = read_back(store, array, rows, api, want)
            same = np.array_equal(np.asarray(got), np.asarray(expected))
            record["outcome"] = "read_correctly" if same else "silently_wrong"
        except StoreError as e:
            record["outcome"] = "detected" if str(file) in str(e) else "unnamed_error"
            record["error"] = str(e)
        except Exception as e:  # the fault must not escape as a bare codec error
            record["outcome"], record["error"] = "unnamed_error", f"{type(e).__name__}: {e}"
        try:
            report = open_store(path).verify()
            record["verify_found"] = any(p.file == str(file) for p in report.problems)
        except StoreError as e:  # cannot open: found if the error names the file
            record["verify_found"] = str(file) in str(e)
    finally:
        file.write_bytes(saved)
    return record


def fault_campaign(path: Path, n_faults: int, seed: int) -> dict:
    """`n_faults` faults on the store at `path`, arrays and kinds in turn; counts + records."""
    rng = np.random.default_rng(seed)
    original = open_store(path)
    want = original.get_rows(0, original.n_frames)
    want["episode_ends"] = original.episode_ends
    want["instruction"] = [original.instruction(i) for i in range(original.n_episodes)]
    want["source_id"] = [original.source_id(i) for i in range(original.n_episodes)]
    files = chunk_files(path)
    arrays = list(files)
    records = []
    for i in range(n_faults):
        kind, api = KINDS[i % len(KINDS)], APIS[i % len(APIS)]
        array = arrays[(i // len(KINDS)) % len(arrays)]  # every array meets every kind
        file = files[array][int(rng.integers(0, len(files[array])))]
        records.append(run_fault(path, array, file, kind, api, rng, original, want))
    counts = Counter(r["outcome"] for r in records)
    by_kind = {k: dict(Counter(r["outcome"] for r in records if r["kind"] == k)) for k in KINDS}
    examples = {}
    for r in records:
        examples.setdefault(f"{r['kind']}:{r['outcome']}", r.get("error", ""))
    return {
        "injected": len(records),
        **{o: counts.get(o, 0) for o in OUTCOMES},
        "verify_found": sum(r["verify_found"] for r in records),
        "by_kind": by_kind,
        "arrays": sorted(set(arrays)),
        "examples": examples,
        "records": records,
    }


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def crc_seconds(path: Path) -> float:
    """crc32c of every chunk file of the store, bytes already in memory: the part of the
    checksum's read cost that does not drown in the timing noise of a whole read."""
    raws = [f.read_bytes() for files in chunk_files(path).values() for f in files]
    return seconds(lambda: [google_crc32c.value(raw) for raw in raws])


def read_costs(crc: Path, plain: Path, rounds: int) -> dict:
    """Reading all rows, and a 64x16 gather, from both stores in alternating rounds."""
    stores = {"crc32c": open_store(crc), "plain": open_store(plain)}
    n, rng = stores["crc32c"].n_frames, np.random.default_rng(0)
    starts = rng.integers(0, n - 16, 64)
    gather = (starts[:, None] + np.arange(16)).reshape(-1)
    runs = {f"{op}_{name}": [] for op in ("read_all", "gather") for name in stores}
    for _ in range(rounds):
        for name, store in stores.items():
            runs[f"read_all_{name}"].append(seconds(lambda s=store: s.get_rows(0, n)))
            runs[f"gather_{name}"].append(seconds(lambda s=store: s.get_frames(gather)))
    result = {k: float(np.median(v)) for k, v in runs.items()}
    result["read_all_ratio"] = result["read_all_crc32c"] / result["read_all_plain"]
    result["gather_ratio"] = result["gather_crc32c"] / result["gather_plain"]
    result["crc_seconds"] = float(np.median([crc_seconds(crc) for _ in range(rounds)]))
    result["crc_share_of_read_all"] = result["crc_seconds"] / result["read_all_crc32c"]
    result["rounds"] = runs
    return result


def grow_stores(crc: Path, plain: Path, work: Path, repeats: int) -> tuple[Path, Path, dict]:
    """Copies of both stores with their episodes appended `repeats` more times (appends to
    the two alternate), finalized: the stores the costs are timed on. Returns their paths
    and the ms per append into each."""
    source = open_store(crc)
    eps = [source.load_episode(i) for i in range(source.n_episodes)]
    stores, times = {}, {"crc32c": [], "plain": []}
    for name, path in (("crc32c", crc), ("plain", plain)):
        shutil.copytree(path, work / f"big_{name}.zarr")
        stores[name] = open_store(work / f"big_{name}.zarr", "a")
    for _ in range(repeats):
        for ep in eps:
            for name, store in stores.items():
                start = time.perf_counter()
                store.append_episode(ep)
                times[name].append(time.perf_counter() - start)
    for store in stores.values():
        store.finalize()
    costs = {f"ms_per_append_{k}": 1e3 * float(np.median(v)) for k, v in times.items()}
    costs["ratio"] = costs["ms_per_append_crc32c"] / costs["ms_per_append_plain"]
    costs["appends"] = len(times["crc32c"])
    return stores["crc32c"].path, stores["plain"].path, costs


def verify_speed(path: Path, rounds: int) -> dict:
    """verify's time on the healthy store, per GB on disk and per GB decoded."""
    store = open_store(path)
    reports = [store.verify() for _ in range(rounds)]
    seconds = float(np.median([r.seconds for r in reports]))
    return {
        "ok": all(r.ok for r in reports),
        "chunks": reports[0].chunks,
        "mb_checked": reports[0].bytes_checked / 1e6,
        "mb_decoded": store.raw_bytes() / 1e6,
        "seconds": seconds,
        "s_per_gb": seconds / (reports[0].bytes_checked / 1e9),
        "s_per_gb_decoded": seconds / (store.raw_bytes() / 1e9),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 episodes, 36 faults per store")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    episodes, n_faults, repeats, rounds = (8, 36, 10, 5) if args.quick else (20, 120, 20, 9)
    work = Path(tempfile.mkdtemp(prefix="store_faults_"))
    try:
        crc, plain = work / "crc32c.zarr", work / "plain.zarr"
        overrides = [f"out={crc}", f"episodes={episodes}", "workers=1", "noise=0.3"]
        summary = generate(load_config("generate", GenerateConfig, overrides))
        shutil.copytree(crc, plain)
        strip_checksums(plain)
        store = open_store(crc)
        results: dict = {"machine": machine_info(), "quick": args.quick}
        results["store"] = {
            "episodes": store.n_episodes,
            "frames": store.n_frames,
            "features": list(store.features),
            "bytes_stored": store.bytes_stored(),
            "generate_seconds": summary["seconds"],
        }
        results["faults"] = {
            name: fault_campaign(p, n_faults, seed=1)
            for name, p in (("crc32c", crc), ("plain", plain))
        }
        big_crc, big_plain, results["append_cost"] = grow_stores(crc, plain, work, repeats)
        results["cost_store"] = {
            "frames": open_store(big_crc).n_frames,
            "bytes_stored_crc32c": open_store(big_crc).bytes_stored(),
            "bytes_stored_plain": open_store(big_plain).bytes_stored(),
        }
        results["read_cost"] = read_costs(big_crc, big_plain, rounds)
        results["verify"] = {
            "crc32c": verify_speed(big_crc, 3),
            "plain": verify_speed(big_plain, 3),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_report(args.out, results)


def write_report(out: Path, results: dict) -> None:
    faults = results["faults"]
    table = markdown_table(
        ["store", "faults", *OUTCOMES, "verify found"],
        [
            [name, f["injected"], *(f[o] for o in OUTCOMES), f["verify_found"]]
            for name, f in faults.items()
        ],
    )
    table += "\n\n" + markdown_table(
        ["store", "fault", *OUTCOMES],
        [
            [name, kind, *(f["by_kind"][kind].get(o, 0) for o in OUTCOMES)]
            for name, f in faults.items()
            for kind in KINDS
        ],
    )
    rc, ac, vf = results["read_cost"], results["append_cost"], results["verify"]
    costs = [
        ("read all rows (s)", rc["read_all_crc32c"], rc["read_all_plain"]),
        ("gather 64x16 rows (s)", rc["gather_crc32c"], rc["gather_plain"]),
        ("append (ms/episode)", ac["ms_per_append_crc32c"], ac["ms_per_append_plain"]),
        ("verify (s/GB on disk)", vf["crc32c"]["s_per_gb"], vf["plain"]["s_per_gb"]),
        (
            "verify (s/GB decoded)",
            vf["crc32c"]["s_per_gb_decoded"],
            vf["plain"]["s_per_gb_decoded"],
        ),
    ]
    table += "\n\n" + markdown_table(
        ["cost", "with crc32c", "without", "ratio"], [[n, a, b, a / b] for n, a, b in costs]
    )
    table += (
        f"\n\ncrc32c of every chunk file: {rc['crc_seconds'] * 1e3:.2f} ms, "
        f"{100 * rc['crc_share_of_read_all']:.2f}% of reading all rows\n"
    )
    for f in faults.values():  # the JSON keeps the faults that were not detected
        f["records"] = [
            r for r in f["records"] if r["outcome"] != "detected" or not r["verify_found"]
        ]
    (out / "store_faults.json").write_text(json.dumps(results, indent=2))
    (out / "store_faults.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
