import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imported(modules: str) -> set[str]:
    code = (
        f"import sys; import {modules}; "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
        env={"PATH": "", "PYTHONPATH": str(ROOT)},
    )
    return set(out.stdout.split())


def test_params_prompts_and_checks_import_without_torch_or_django():
    loaded = _imported("generation.params, generation.prompts, generation.checks")
    assert not {"torch", "transformers", "django"} & loaded


def test_the_engine_side_never_imports_django():
    loaded = _imported("generation.engine, generation.registry, generation.testing")
    assert "torch" in loaded
    assert "django" not in loaded
