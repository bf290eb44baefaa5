"""The editorial workspace at catalog size: server time of the pages editors use all day.

Setup (not timed; ``--keep`` reuses a catalog built before): ``--products`` (default 100,000)
products of six brands, 60% English and 40% Chinese, each with three drafts (description,
title, bullets) in realistic states; every generated draft has two candidates of one of two
model versions (a prompt of ~1 kB each, a quarter with a warning flag, one in twenty with an
error), the model's first revision, and an editor's revision for most edited ones. Rows are
written with ``COPY`` in one transaction, then ``VACUUM ANALYZE``. It needs PostgreSQL
(``DATABASE_URL``) and a database of its own: the catalog tables are emptied first.

Measured in-process with Django's test client (``DEBUG=0``; ``--requests`` each, default 50,
after two warm-up requests): wall time of each request, median and p95, and the number of
queries of one more request:

- the queue: unfiltered; state + brand; searched by an English word and a Chinese word;
  sorted by last update;
- a draft page; a save (a new revision of a draft in edit);
- the dashboard, viewed again and viewed first after a review (a draft rejected); the products
  page searched by an English word.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/copydesk_bench \\
        .venv/bin/python benchmarks/web.py [--keep] [--explain]

``--explain`` prints ``EXPLAIN (ANALYZE, BUFFERS)`` of each page's slowest queries. Last line:
``p95_ms: queue=X draft=Y save=Z dashboard=W search=V`` (queue: the worst unsearched queue
variant; search: the worst of the three searches).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BRANDS = [("Northwind Home", "en"), ("Alder & Oak", "en"), ("Brightline", "en"),
          ("Kestrel Outdoor", "en"), ("青禾家居", "zh-hans"), ("山岚茶具", "zh-hans")]
EN_TYPES = ["kettle", "teapot", "mug", "frying pan", "saucepan", "chef's knife", "cutting board",
            "blender", "toaster", "coffee grinder", "water bottle", "lunch box", "desk lamp",
            "throw blanket", "pillow", "bath towel", "backpack", "tent", "sleeping bag",
            "rain jacket", "hiking boots", "yoga mat", "dumbbell set", "plant pot", "candle"]
EN_ADJECTIVES = ["stainless steel", "cast iron", "bamboo", "ceramic", "glass", "cotton",
                 "linen", "recycled", "compact", "cordless", "insulated", "lightweight"]
ZH_TYPES = ("茶杯 茶壶 电水壶 保温杯 炒锅 汤锅 菜刀 砧板 榨汁机 面包机 "
            "台灯 毛毯 枕头 浴巾 双肩包 帐篷 睡袋 冲锋衣 瑜伽垫 香薰蜡烛").split()
ZH_ADJECTIVES = ["不锈钢", "铸铁", "竹制", "陶瓷", "玻璃", "纯棉", "亚麻", "便携", "无线", "轻量"]
KINDS = ["description", "title", "bullets"]
STATES = [("ready", 30), ("in_edit", 15), ("in_review", 10), ("changes_requested", 5),
          ("approved", 20), ("exported", 10), ("rejected", 5), ("generating", 3), ("failed", 2)]
EDITED = {"in_edit", "in_review", "changes_requested", "approved", "exported", "rejected"}
WARNING_FLAG = {"code": "too_long", "severity": "warning", "message": "Longer than the limit."}
ERROR_FLAG = {"code": "ungrounded_number", "severity": "error", "message": "A number not given."}
PROMPT_PAD = ("Write in the brand's voice. Use only the facts in the data block. " * 14)


def setup_django() -> None:
    os.environ.setdefault("COPYDESK_VAR_DIR", tempfile.mkdtemp(prefix="copydesk-web-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "copydesk.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "x" * 40)
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    import django

    django.setup()


# --- Setup ------------------------------------------------------------------------------------

def _copy(cursor, table: str, columns: list[str], rows) -> int:
    count = 0
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _product(i: int, rng: random.Random, brands: list[tuple[int, str]]) -> tuple:
    brand_id, locale = brands[i % len(brands)]
    if locale == "en":
        kind, adjective = rng.choice(EN_TYPES), rng.choice(EN_ADJECTIVES)
        title = f"{adjective.title()} {kind.title()} {rng.randint(1, 90)}"
        text = (f"A {adjective} {kind} for everyday use. Made to last, easy to clean, "
                f"and sized for a small kitchen or a big family.")
        category = kind.title()
    else:
        kind, adjective = rng.choice(ZH_TYPES), rng.choice(ZH_ADJECTIVES)
        title = f"{adjective}{kind} {rng.randint(1, 90)}号"
        text = f"这款{adjective}{kind}做工精细，经久耐用，清洗方便，适合家庭日常使用。"
        category = kind
    return (title, brand_id, category, locale, text, kind, adjective)


def _copy_text(kind: str, title: str, locale: str, product_kind: str, adjective: str,
               variant: int) -> str:
    if locale == "en":
        if kind == "title":
            return f"{title} — {adjective} {product_kind}" + (" for home" if variant else "")
        if kind == "bullets":
            return (f"- {adjective.capitalize()} build\n- Easy to clean\n- A {product_kind} "
                    f"that lasts" + ("\n- Gift ready" if variant else ""))
        return (f"Meet the {title}: a {adjective} {product_kind} made for the way you live. "
                f"It is easy to clean, built to last and looks good on any shelf. "
                + ("Order today." if variant else "A quiet favourite."))
    if kind == "title":
        return f"{title}｜{adjective}{product_kind}" + ("家用" if variant else "")
    if kind == "bullets":
        return f"- {adjective}材质\n- 易于清洗\n- 经久耐用" + ("\n- 送礼佳选" if variant else "")
    return (f"这款{adjective}{product_kind}外观简约，做工精细，清洗方便，经久耐用，"
            f"适合家庭日常使用。" + ("现在下单。" if variant else "居家好物。"))


def build(count: int, seed: int = 7) -> dict:
    """Empty the catalog tables and write the catalog; returns the row counts."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection, transaction
    from django.utils import timezone

    from editorial.models import Brand, ModelVersion

    rng = random.Random(seed)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE editorial_product, editorial_brand, editorial_candidate, "
            "editorial_revision, editorial_draft RESTART IDENTITY CASCADE")
    user_model = get_user_model()
    editors = []
    for name in ("web-editor-1", "web-editor-2", "web-editor-3", "web-bench"):
        user, _ = user_model.objects.get_or_create(username=name)
        user.groups.add(*Group.objects.filter(name__in=["Editor", "Reviewer"]))
        editors.append(user.pk)
    versions = [
        ModelVersion.objects.get_or_create(
            name=name, defaults={"source": ModelVersion.Source.LOCAL, "path": "/nonexistent",
                                 "status": ModelVersion.Status.READY})[0].pk
        for name in ("web-bench-a", "web-bench-b")
    ]
    brands = [(Brand.objects.create(name=name, locale=locale).pk, locale)
              for name, locale in BRANDS]
    states = [state for state, weight in STATES for _ in range(weight)]
    products, drafts, candidates, revisions = [], [], [], []
    draft_id = candidate_id = revision_id = 0
    for i in range(1, count + 1):
        title, brand_id, category, locale, text, kind_word, adjective = _product(i, rng, brands)
        created = now - timedelta(days=rng.randint(30, 365))
        products.append((f"SKU-{i:07d}", title, brand_id, category, "{}", text, locale,
                         "csv", "{}", created, created))
        for kind in KINDS:
            draft_id += 1
            state = rng.choice(states)
            updated = now - timedelta(minutes=rng.randint(1, 90 * 24 * 60))
            current = approved = exported = approved_at = approved_by = None
            usable = None
            assignee = rng.choice(editors) if state in EDITED and state != "rejected" else None
            if state not in {"generating", "failed"}:
                version = versions[i % 2]
                first = candidate_id + 1
                for index in range(2):
                    candidate_id += 1
                    roll = rng.random()
                    flags = ([ERROR_FLAG] if roll < 0.05 else [WARNING_FLAG] if roll < 0.30
                             else [])
                    body = _copy_text(kind, title, locale, kind_word, adjective, index)
                    prompt = json.dumps([{"role": "system", "content": PROMPT_PAD},
                                         {"role": "user", "content": f"{title}\n{text}"}],
                                        ensure_ascii=False)
                    candidates.append((candidate_id, draft_id, index, body, prompt, "[]", "{}",
                                       version, 300, 80, 900, json.dumps(flags),
                                       not flags or flags[0]["severity"] != "error",
                                       -len(flags), index, created, bool(flags)))
                usable = True
                revision_id += 1
                base_text = _copy_text(kind, title, locale, kind_word, adjective, 0)
                revisions.append((revision_id, draft_id, 1, None, base_text, None, first,
                                  updated - timedelta(days=1)))
                current = revision_id
                if state in EDITED and rng.random() < 0.8:
                    revision_id += 1
                    edit = base_text + (" Edited." if locale == "en" else "（已修改）")
                    if rng.random() < 0.5:
                        edit = base_text
                    revisions.append((revision_id, draft_id, 2, current, edit,
                                      rng.choice(editors), None, updated))
                    current = revision_id
                if state in {"approved", "exported"}:
                    approved, approved_at, approved_by = current, updated, editors[0]
                if state == "exported":
                    exported = current
            drafts.append((draft_id, i, kind, state, assignee, current, approved, exported,
                           approved_at, approved_by, "", usable, created, updated))
    with transaction.atomic(), connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        written = {
            "products": _copy(cursor, "editorial_product", [
                "sku", "title", "brand_id", "category", "attributes", "source_text", "locale",
                "source_format", "raw", "created_at", "updated_at"], products),
            "drafts": _copy(cursor, "editorial_draft", [
                "id", "product_id", "kind_id", "state", "assignee_id", "current_revision_id",
                "approved_revision_id", "exported_revision_id", "approved_at",
                "approved_by_id", "error", "usable", "created_at", "updated_at"], drafts),
            "candidates": _copy(cursor, "editorial_candidate", [
                "id", "draft_id", "index", "text", "prompt", "examples", "params",
                "model_version_id", "prompt_tokens", "completion_tokens", "generation_ms",
                "flags", "usable", "score", "rank", "created_at", "flagged"], candidates),
            "revisions": _copy(cursor, "editorial_revision", [
                "id", "draft_id", "number", "parent_id", "text", "author_id", "candidate_id",
                "created_at"], revisions),
        }
        for table in ("draft", "candidate", "revision"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('editorial_{table}', 'id'), "
                           f"(SELECT max(id) FROM editorial_{table}))")
        after_build()
    _vacuum()
    return written


def after_build() -> None:
    """The columns drafts and candidates copy from other rows, filled the way the migration
    that added them fills them."""
    import importlib
    from types import SimpleNamespace

    from django.db import connection

    for name in ("0013_queue_at_catalog_size", "0014_revision_origin",
                 "0015_draft_review_figures", "0016_draft_sort_key"):
        migration = importlib.import_module(f"editorial.migrations.{name}")
        migration.backfill(None, SimpleNamespace(connection=connection))


def _vacuum() -> None:
    from django.db import connection

    connection.ensure_connection()
    raw = connection.connection
    autocommit = raw.autocommit
    raw.autocommit = True
    try:
        with raw.cursor() as cursor:
            for table in ("product", "draft", "candidate", "revision", "brand"):
                cursor.execute(f"VACUUM ANALYZE editorial_{table}")
    finally:
        raw.autocommit = autocommit


# --- Measuring --------------------------------------------------------------------------------

def _pages(state: dict) -> list[tuple[str, str, callable]]:
    """(name, group, request maker): each maker returns (method, path, data)."""
    brand = state["brand"]
    drafts = state["edit_drafts"]
    turn = {"draft": 0, "save": 0, "state": 0}

    def draft_page():
        turn["draft"] += 1
        return "get", f"/drafts/{drafts[turn['draft'] % len(drafts)]}/", None

    def save():
        from editorial.models import Draft

        turn["save"] += 1
        pk = drafts[-1 - turn["save"] % len(drafts)]
        base = Draft.objects.values_list("current_revision_id", flat=True).get(pk=pk)
        return "post", f"/drafts/{pk}/save/", {
            "text": f"Benchmark edit {turn['save']}: a kettle that boils fast.",
            "base_revision_id": base}

    def dashboard_after_a_review():
        # A draft is rejected or sent back before each request (untimed), saved as the review
        # services save it (its version's review fields with it), so the dashboard cannot
        # answer that version's figures from what it keeps: the first view after a review.
        from editorial.models import Draft

        turn["state"] += 1
        draft = Draft.objects.get(pk=state["ready_draft"])
        draft.state = "rejected" if turn["state"] % 2 else "ready"
        draft.save(update_fields=["state"])
        return "get", "/", None

    return [
        ("queue", "queue", lambda: ("get", "/drafts/", None)),
        ("queue state+brand", "queue",
         lambda: ("get", f"/drafts/?state=ready&brand={brand}", None)),
        ("queue search kettle", "search", lambda: ("get", "/drafts/?q=kettle", None)),
        ("queue search 茶杯", "search", lambda: ("get", "/drafts/?q=茶杯", None)),
        ("queue sort -updated", "queue", lambda: ("get", "/drafts/?sort=-updated", None)),
        ("draft page", "draft", draft_page),
        ("save", "save", save),
        ("dashboard", "dashboard", lambda: ("get", "/", None)),
        ("dashboard after a review", "dashboard", dashboard_after_a_review),
        ("products search kettle", "search", lambda: ("get", "/products/?q=kettle", None)),
    ]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def measure(requests: int, *, explain: bool) -> dict[str, dict]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from editorial.models import Brand, Draft

    user = get_user_model().objects.get(username="web-bench")
    client = Client()
    client.force_login(user)
    state = {
        "brand": Brand.objects.get(name=BRANDS[0][0]).pk,
        "edit_drafts": list(Draft.objects.filter(state="in_edit", assignee=user)
                            .order_by("pk").values_list("pk", flat=True)[:200]),
        "ready_draft": Draft.objects.filter(state="ready").order_by("pk").values_list(
            "pk", flat=True).first(),
    }
    results = {}
    for name, group, make in _pages(state):
        def once(make=make, name=name):
            method, path, data = make()
            started = time.perf_counter()
            response = getattr(client, method)(path, data, secure=True)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code not in (200, 302):
                raise SystemExit(f"{name}: {path} answered {response.status_code}")
            return elapsed

        for _ in range(2):
            once()
        times = [once() for _ in range(requests)]
        with CaptureQueriesContext(connection) as captured:
            once()
        results[name] = {"group": group, "median": statistics.median(times),
                         "p95": _percentile(times, 0.95), "queries": len(captured),
                         "sql": [(q["sql"], float(q["time"])) for q in captured.captured_queries]}
        print(f"{name:26s} median {results[name]['median']:7.1f} ms   p95 "
              f"{results[name]['p95']:7.1f} ms   queries {results[name]['queries']}", flush=True)
        if explain:
            _explain(name, results[name]["sql"])
    return results


def _explain(name: str, queries: list[tuple[str, float]]) -> None:
    """EXPLAIN ANALYZE of a page's three slowest SELECTs."""
    from django.db import connection

    print(f"\n### {name}\n")
    slowest = sorted((q for q in queries if q[0].lstrip().upper().startswith("SELECT")),
                     key=lambda q: -q[1])[:3]
    with connection.cursor() as cursor:
        for sql, seconds in slowest:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql)
            print(f"```\n-- {seconds * 1000:.1f} ms: {sql[:300]}")
            print("\n".join(row[0] for row in cursor.fetchall()))
            print("```")


# --- Catalog writes at this size ---------------------------------------------------------------

SHOPIFY_COLUMNS = ["Handle", "Title", "Body (HTML)", "Vendor", "Type", "Tags", "Published",
                   "Option1 Name", "Option1 Value", "Variant SKU", "Variant Price", "SEO Title",
                   "SEO Description", "Status"]


def shopify_csv(count: int, seed: int = 11) -> bytes:
    """A Shopify product export of ``count`` products, two variant rows each, both languages."""
    import csv
    import io

    rng = random.Random(seed)
    brands = [(i, locale) for i, (_name, locale) in enumerate(BRANDS)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(SHOPIFY_COLUMNS)
    for i in range(1, count + 1):
        title, brand, category, _locale, text, _kind, _adj = _product(i, rng, brands)
        handle = f"shop-{i:07d}"
        writer.writerow([handle, title, f"<p>{text}</p>", BRANDS[brand][0], category, "home",
                         "TRUE", "Size", "S", f"{handle}-s", "19.00", title, text, "active"])
        writer.writerow([handle, "", "", "", "", "", "", "", "M", f"{handle}-m", "24.00", "",
                         "", ""])
    return out.getvalue().encode("utf-8")


def catalog_writes(sizes: list[int]) -> None:
    """Import a Shopify CSV of each size into an emptied catalog (rows/s, the peak resident
    size during the import above the size before it), then ``generation_job_request`` for
    every product of the last one (one kind)."""
    from django.db import connection

    from benchmarks.export import current_rss_mb, export_peak_rss_mb, reset_peak_rss
    from editorial.catalog import products_import
    from editorial.models import ModelVersion, Product
    from editorial.services import generation_job_request

    for size in sizes:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE editorial_product, editorial_brand, editorial_catalogimport "
                           "RESTART IDENTITY CASCADE")
        data = shopify_csv(size)
        before = current_rss_mb()
        reset = reset_peak_rss()
        started = time.perf_counter()
        report = products_import(data=data, filename="shop.csv")
        seconds = time.perf_counter() - started
        peak = export_peak_rss_mb(reset)
        print(f"import {size} products ({len(data) / 1e6:.1f} MB Shopify CSV): {seconds:.1f} s, "
              f"{size / seconds:,.0f} rows/s, created {report.created}, errors "
              f"{len(report.errors)}; peak RSS {peak:.0f} MB ({peak - before:+.0f} MB over "
              f"{before:.0f} MB before), load {os.getloadavg()[0]:.2f}", flush=True)
        del data
    version = ModelVersion.objects.get_or_create(
        name="web-bench-a", defaults={"source": ModelVersion.Source.LOCAL,
                                      "path": "/nonexistent",
                                      "status": ModelVersion.Status.READY})[0]
    started = time.perf_counter()
    job = generation_job_request(products=Product.objects.all(), kinds=["description"],
                                 params={}, user=None, model_version=version, enqueue=False)
    seconds = time.perf_counter() - started
    print(f"generation_job_request for {Product.objects.count()} products: {job.total} drafts "
          f"in {seconds:.1f} s ({job.total / seconds:,.0f} drafts/s; chunks not sent), "
          f"load {os.getloadavg()[0]:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--keep", action="store_true",
                        help="reuse the catalog a previous run built (if it has the size)")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--catalog-writes", action="store_true",
                        help="instead: time a Shopify CSV import at 10k and --products "
                             "products and a generation job request for all of them (empties "
                             "the catalog)")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database of its own.")
    setup_django()
    from django.core.management import call_command

    from editorial.models import Candidate, Draft, Product, Revision

    call_command("migrate", verbosity=0)
    if args.catalog_writes:
        catalog_writes(sorted({10_000, args.products}))
        return
    if args.keep and Product.objects.count() == args.products:
        print(f"reusing the catalog: {args.products} products", flush=True)
    else:
        started = time.perf_counter()
        written = build(args.products)
        print(f"built in {time.perf_counter() - started:.0f} s: {written}", flush=True)
    print({"products": Product.objects.count(), "drafts": Draft.objects.count(),
           "candidates": Candidate.objects.count(), "revisions": Revision.objects.count()},
          f"load {os.getloadavg()}", flush=True)
    results = measure(args.requests, explain=args.explain)

    def worst(group: str) -> float:
        return max(r["p95"] for r in results.values() if r["group"] == group)

    print(f"load {os.getloadavg()}")
    print(f"p95_ms: queue={worst('queue'):.0f} draft={worst('draft'):.0f} "
          f"save={worst('save'):.0f} dashboard={worst('dashboard'):.0f} "
          f"search={worst('search'):.0f}")


if __name__ == "__main__":
    main()
