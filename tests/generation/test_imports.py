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


def test_the_web_process_sends_tasks_and_requests_fine_tunes_without_torch():
    code = (
        "import os, sys, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'copydesk.settings'; "
        "django.setup(); import copydesk.urls, editorial.services; "
        "from editorial.workers import exports, finetune, generation, sweeper; "
        "from copydesk.celery import app; app.loader.import_default_modules(); "
        "print(sorted(t for t in app.tasks if t.startswith('editorial.'))); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    tasks, torch_loaded = out.stdout.splitlines()[-2:]
    assert tasks == str(sorted([
        "editorial.workers.exports.run_export", "editorial.workers.finetune.finetune_model",
        "editorial.workers.generation.generate_chunk", "editorial.workers.sweeper.resume_jobs",
    ]))
    assert torch_loaded == "False"
