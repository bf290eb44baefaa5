"""What the benchmarks share: Django set up as in production; a catalog with reference copy, read
by the desk's own parsers; the content kinds as the seed migration defines them; chrF."""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))



def setup_django(var_dir: Path, *, migrate: bool = True) -> None:
    """Django on its own var directory (SQLite unless ``DATABASE_URL`` says otherwise)."""
    os.environ["COPYDESK_VAR_DIR"] = str(var_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "copydesk.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # As in production: DEBUG on would also record every query in memory.
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "x" * 40)
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)

def load_catalog(path: Path) -> list[dict]:
    """Products with reference copy, read by the desk's own importer parsers."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "copydesk.settings")
    os.environ.setdefault("COPYDESK_VAR_DIR", tempfile.mkdtemp(prefix="copydesk-learning-"))
    import django

    django.setup()
    from editorial import catalog

    text, _encoding = catalog.decode(path.read_bytes(), path.name)
    parse = catalog.PARSERS[catalog.detect_format(text, path.name)]
    products = []
    for record in parse(text, path.name):
        if isinstance(record, catalog.RowError) or not (record.source_text or "").strip():
            continue
        locale = catalog.locale_normalize(record.locale or "") or catalog.locale_detect(
            record.title, record.source_text)
        products.append({
            "sku": record.sku, "title": record.title, "brand": record.brand or "",
            "category": record.category or "", "attributes": dict(record.attributes),
            "locale": locale, "reference": record.source_text.strip(),
        })
    return products


def kind_spec(code: str):
    import importlib

    from generation.prompts import KindSpec

    seed = importlib.import_module("editorial.migrations.0002_seed_kinds_and_roles")
    for kind_code, label, max_chars, _max_new, instructions in seed.KINDS:
        if kind_code == code:
            return KindSpec(code=code, label=label, instructions=instructions,
                            max_chars=max_chars)
    raise SystemExit(f"unknown kind {code!r}")


def chrf(hypothesis: str, reference: str, n: int = 6, beta: float = 2.0) -> float:
    """Character n-gram F-score (sacrebleu's chrF defaults: n 1..6, beta 2, whitespace
    removed), 0..100."""
    hyp, ref = "".join(hypothesis.split()), "".join(reference.split())
    precisions, recalls = [], []
    for order in range(1, n + 1):
        h = Counter(hyp[i:i + order] for i in range(len(hyp) - order + 1))
        r = Counter(ref[i:i + order] for i in range(len(ref) - order + 1))
        if not h or not r:
            continue
        overlap = sum((h & r).values())
        precisions.append(overlap / sum(h.values()))
        recalls.append(overlap / sum(r.values()))
    if not precisions:
        return 0.0
    p, r = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    if p + r == 0:
        return 0.0
    return 100 * (1 + beta**2) * p * r / (beta**2 * p + r)
