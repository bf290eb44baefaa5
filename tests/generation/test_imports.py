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


def test_no_module_of_the_package_imports_django_or_celery():
    """``generation`` is a library: every module of it, torch side included."""
    modules = sorted(p.stem for p in (ROOT / "generation").glob("*.py") if p.stem != "__init__")
    loaded = _imported(", ".join(f"generation.{name}" for name in modules))
    assert "torch" in loaded
    assert not {"django", "celery", "editorial", "copydesk"} & loaded
