"""Export throughput and memory: approved copy streamed out of the database at 10k and 100k
drafts (target: 100,000 rows in under 30 s, memory flat in the row count).

Setup (not timed): ``--rows`` (default 100,000) + 10,000 Shopify-imported products, each with one
approved description draft whose revision came from a model candidate, inserted with
``bulk_create`` and one ``UPDATE``; the 10k and 100k sets are two brands, so each run exports
exactly its set with a brand filter.

Each export runs in a **fresh child process** (``--child``), through the same service a
background export's Celery task calls (``export_batch_create`` + ``export_batch_run``: rows read
with one streaming query, written to ``var/exports/``, drafts marked exported in one
transaction at the end). The child reports:

- rows/s: drafts written / wall seconds of the export call (file fsync and marking included);
- peak RSS: the child's resident size at its highest *during the export* (``VmHWM`` after
  resetting it through ``/proc/self/clear_refs`` just before the export; where that is not
  possible, ``ru_maxrss``, the lifetime peak), i.e. the whole process (Python, Django and the
  export), and how far that is above its resident size (``VmRSS``) just before the export:
  what the export itself added.

Baseline, in the same run at 10k rows only: the obvious ORM version (``list()`` of model instances
with ``select_related``, one ``csv.writer`` row each, one ``UPDATE``), the one whose memory grows
with the row count. The ratio printed is project rows/s / baseline rows/s at 10k.

    .venv/bin/python benchmarks/export.py                     # SQLite in a temporary folder
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/copydesk_bench_export \\
        .venv/bin/python benchmarks/export.py                 # a scratch database: it is filled

CSV runs first (a first export: every draft is marked exported at the end); JSON Lines and
Shopify CSV then re-export the same drafts (already exported with the same revision: nothing
to mark). Last line: ``rows_per_s: X peak_rss_mb: Y`` for the 100k CSV run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import setup_django  # noqa: E402

SMALL = 10_000


def rss_mb() -> float:
    """Peak resident set size of this process so far (``ru_maxrss``, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Start a new peak: Linux resets ``VmHWM`` when 5 is written to /proc/self/clear_refs."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def current_rss_mb() -> float:
    """Resident set size now (``VmRSS``); the peak so far where /proc is missing."""
    return _status_mb("VmRSS") or rss_mb()


def export_peak_rss_mb(reset: bool) -> float:
    """The highest resident size since ``reset_peak_rss`` (``VmHWM``), i.e. during the export;
    without the reset, the process's lifetime peak (``ru_maxrss``), an upper bound."""
    return (_status_mb("VmHWM") if reset else None) or rss_mb()


# --- Setup -------------------------------------------------------------------------------------

def make_drafts(count: int, brand_name: str) -> float:
    """``count`` Shopify-imported products with one approved description each; seconds taken."""
    from django.db import transaction
    from django.db.models import OuterRef, Subquery
    from django.utils import timezone

    from editorial.models import Brand, Candidate, Draft, ModelVersion, Product, Revision

    started = time.perf_counter()
    brand = Brand.objects.get_or_create(name=brand_name)[0]
    version = ModelVersion.objects.get_or_create(
        name="bench-model", defaults={"source": ModelVersion.Source.LOCAL, "path": "/nonexistent"}
    )[0]
    columns = ["Handle", "Title", "Body (HTML)", "Vendor", "Option1 Name", "Option1 Value",
               "Variant SKU", "Variant Price", "SEO Title", "SEO Description"]
    prefix = brand_name.replace(" ", "-").lower()
    text = ("A double-walled stainless steel kettle that boils 1.7 L in four minutes; the "
            "handle stays cool, the lid opens with one hand, and it switches itself off.\n"
            "Descaled in a minute with vinegar, \"quiet\" at night, 2200 W.")
    batch = 5000
    with transaction.atomic():
        for start in range(0, count, batch):
            size = min(batch, count - start)
            products = Product.objects.bulk_create(
                Product(
                    sku=f"{prefix}-{i:07d}", title=f"Kettle {i}", brand=brand, locale="en",
                    source_format=Product.SourceFormat.SHOPIFY,
                    raw={"columns": columns, "rows": [
                        [f"{prefix}-{i:07d}", f"Kettle {i}", "<p>old</p>", brand_name, "Size",
                         "S", f"K-{i}-S", "39.00", f"Kettle {i}", "Old SEO"],
                        [f"{prefix}-{i:07d}", "", "", "", "", "M", f"K-{i}-M", "42.00", "", ""],
                    ]},
                )
                for i in range(start, start + size)
            )
            drafts = Draft.objects.bulk_create(
                Draft(product=product, kind_id="description", state=Draft.State.READY)
                for product in products
            )
            candidates = Candidate.objects.bulk_create(
                Candidate(draft=draft, index=0, text=text, model_version=version)
                for draft in drafts
            )
            Revision.objects.bulk_create(
                Revision(draft=draft, number=1, text=text, candidate=candidate)
                for draft, candidate in zip(drafts, candidates, strict=True)
            )
        first = Revision.objects.filter(draft_id=OuterRef("pk"), number=1).values("pk")[:1]
        Draft.objects.filter(product__brand=brand).update(
            current_revision_id=Subquery(first), approved_revision_id=Subquery(first),
            state=Draft.State.APPROVED, approved_at=timezone.now(),
        )
    return time.perf_counter() - started


# --- Child: one export, measured ---------------------------------------------------------------

def child(args) -> None:
    setup_django(Path(args.var_dir), migrate=False)
    from django.db import connection

    from editorial import exporters
    from editorial.models import Brand

    Brand.objects.count()  # connect and warm up before the baseline RSS
    connection.ensure_connection()
    before = current_rss_mb()
    reset = reset_peak_rss()
    started = time.perf_counter()
    if args.baseline:
        rows = baseline_export(args.brand, Path(args.var_dir) / "baseline.csv")
    else:
        batch = exporters.export_batch_create(user=None, fmt=args.fmt,
                                              filters={"brand": args.brand}, background=True)
        rows = exporters.export_batch_run(batch_id=batch.pk)
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": rows, "seconds": seconds, "rss_before_mb": before,
                      "peak_rss_mb": export_peak_rss_mb(reset), "peak_reset": reset,
                      "process_peak_rss_mb": rss_mb()}))


def baseline_export(brand: str, path: Path) -> int:
    """The obvious version: every row as a model instance in a list, then written."""
    import csv

    from django.db.models import F

    from editorial.models import Draft

    drafts = list(
        Draft.objects.filter(state__in=["approved", "exported"], product__brand__name=brand)
        .select_related("product", "kind", "approved_by",
                        "approved_revision__candidate__model_version")
        .order_by("product__sku", "kind__position")
    )
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["sku", "title", "kind", "locale", "text", "revision", "approved_by",
                         "approved_at", "model_version"])
        for d in drafts:
            writer.writerow([d.product.sku, d.product.title, d.kind.code, d.product.locale,
                             d.approved_revision.text, d.approved_revision.number,
                             d.approved_by.get_username() if d.approved_by else "",
                             d.approved_at.isoformat(),
                             d.approved_revision.candidate.model_version.name])
    Draft.objects.filter(pk__in=[d.pk for d in drafts]).update(
        state="exported", exported_revision_id=F("approved_revision_id"))
    return len(drafts)


def run_child(var_dir: Path, brand: str, fmt: str, *, baseline: bool = False) -> dict:
    command = [sys.executable, __file__, "--child", "--var-dir", str(var_dir), "--brand", brand,
               "--format", fmt]
    if baseline:
        command.append("--baseline")
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            env={**os.environ, "COPYDESK_VAR_DIR": str(var_dir)})
    if result.returncode:
        sys.exit(f"export child failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(label: str, figures: dict) -> float:
    rate = figures["rows"] / figures["seconds"]
    print(f"{label}: {figures['rows']} rows in {figures['seconds']:.2f} s = {rate:,.0f} rows/s; "
          f"peak RSS {figures['peak_rss_mb']:.0f} MB "
          f"(+{figures['peak_rss_mb'] - figures['rss_before_mb']:.0f} MB over the process "
          f"before the export{'' if figures['peak_reset'] else '; lifetime peak'})")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="the large run (default 100k)")
    parser.add_argument("--formats", default="csv,jsonl,shopify",
                        help="formats to time (comma-separated; csv always runs, first)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--var-dir", help=argparse.SUPPRESS)
    parser.add_argument("--brand", help=argparse.SUPPRESS)
    parser.add_argument("--format", dest="fmt", default="csv", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    with tempfile.TemporaryDirectory(prefix="copydesk-bench-export-") as tmp:
        var_dir = Path(tmp)
        setup_django(var_dir, migrate=True)
        from django.db import connection

        from editorial.models import Product

        if Product.objects.exists():
            sys.exit("the database is not empty: use a scratch database")
        small, large = "Bench 10k", "Bench large"
        seconds = make_drafts(SMALL, small) + make_drafts(args.rows, large)
        print(f"setup: {SMALL + args.rows} approved drafts inserted in {seconds:.1f} s "
              f"(bulk_create)")
        print(f"database: {connection.vendor}; load average {os.getloadavg()[0]:.1f}; "
              f"{os.cpu_count()} CPUs")
        connection.close()  # the children have the database to themselves

        base = report(f"baseline (model instances in a list) {SMALL // 1000}k csv",
                      run_child(var_dir, small, "csv", baseline=True))
        # CSV first: its runs are first exports, which mark every draft exported; the other
        # formats re-export drafts that are exported already (no rows to mark).
        formats = ["csv"] + [f for f in args.formats.split(",") if f and f != "csv"]
        results = {}
        sizes = ((f"{SMALL // 1000}k", small), (f"{args.rows // 1000}k", large))
        for fmt in formats:
            for label, brand in sizes:
                results[fmt, label] = run_child(var_dir, brand, fmt)
                note = "first export" if fmt == "csv" else "re-export"
                report(f"export {label} {fmt} ({note})", results[fmt, label])
        small_rate = results["csv", sizes[0][0]]
        print(f"ratio at {SMALL // 1000}k csv (project / baseline rows/s): "
              f"{small_rate['rows'] / small_rate['seconds'] / base:.2f}")
        large_run = results["csv", sizes[1][0]]
        print(f"rows_per_s: {large_run['rows'] / large_run['seconds']:.0f} "
              f"peak_rss_mb: {large_run['peak_rss_mb']:.0f}")


if __name__ == "__main__":
    main()
