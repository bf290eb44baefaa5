"""The benchmark script runs without Django (it also runs on GPU boxes that have none)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "generation.py"


def test_the_benchmark_builds_its_prompts_without_django():
    code = (
        "import runpy, sys; ns = runpy.run_path(sys.argv[1]); "
        "messages = ns['product_messages'](100); "
        "assert len(messages) == 100 and messages[96] == messages[0]; "
        "print('django' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(SCRIPT)], cwd="/", capture_output=True, text=True,
        check=True, env={"PATH": ""},
    )
    assert out.stdout.split() == ["False", "False"]


def test_the_benchmark_ships_only_small_model_files():
    assets = ROOT / "benchmarks" / "assets" / "smollm2"
    names = {p.name for p in assets.iterdir()}
    assert {"config.json", "tokenizer.json", "generation_config.json"} <= names
    assert not any(n.endswith((".safetensors", ".bin", ".gguf")) for n in names)
    assert sum(p.stat().st_size for p in assets.iterdir()) < 5 * 2**20
