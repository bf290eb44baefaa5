"""End-to-end throughput through a real Celery worker vs the engine alone, and the cost of
requesting a job for a whole catalog.

    .venv/bin/python benchmarks/pipeline.py [--products 200] [--max-new-tokens 16]
    .venv/bin/python benchmarks/pipeline.py --request-only --products 100000

Pipeline mode: N products (from the demo catalog, SKUs made unique), one worker process started
here and warmed up (model loaded) with a one-draft job, then timed from `generation_job_request`
until every candidate is stored; then, in this process with the worker stopped, the engine alone
on the same prompts, seeds and params. Prints products per minute for both and the overhead
(queue, database, checks) in percent; its last line is `overhead: X.X%`.

Request-only mode: N products inserted with bulk_create, then `generation_job_request` for N
products x 1 kind timed, chunk messages included (sent to the broker after commit, then purged).

Runs against a private SQLite file and filesystem broker under a temporary folder, unless
DATABASE_URL / CELERY_BROKER_URL are set (use a scratch database: it is migrated and filled, and
a Redis broker's queues are purged).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import setup_django  # noqa: E402


def database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return os.environ["DATABASE_URL"]


def make_products(count: int, prefix: str) -> list[int]:
    from editorial.models import Brand, Product

    rows = [json.loads(line) for line in (ROOT / "data/demo/catalog.jsonl").open()]
    brands = {name: Brand.objects.get_or_create(name=name)[0]
              for name in {r.get("brand") or "" for r in rows} if name}
    products = []
    for i in range(count):
        row = rows[i % len(rows)]
        products.append(Product(
            sku=f"{prefix}-{i:06d}", title=row["title"], brand=brands.get(row.get("brand")),
            category=row.get("category", ""), attributes=row.get("attributes") or {},
            source_text=row.get("description", ""), locale=row.get("locale", "en"),
        ))
    created = Product.objects.bulk_create(products, batch_size=2000)
    if created and created[0].pk is not None:
        return [p.pk for p in created]
    return list(Product.objects.filter(sku__startswith=f"{prefix}-").values_list("pk", flat=True))


def purge_broker() -> None:
    from copydesk.celery import app

    app.control.purge()


def request_only(args) -> None:
    from django.db import connection

    from editorial.models import JobChunk, Product
    from editorial.services import generation_job_request
    from tests.factories import ModelVersionFactory

    version = ModelVersionFactory(name="bench-model", is_default=True)
    started = time.perf_counter()
    make_products(args.products, "REQ")
    created = time.perf_counter() - started
    products = Product.objects.filter(sku__startswith="REQ-")
    started = time.perf_counter()
    job = generation_job_request(products=products, kinds=["description"], params={},
                                 user=None, model_version=version)
    seconds = time.perf_counter() - started
    chunks = JobChunk.objects.filter(job=job)
    sent = chunks.filter(sent_at__isnull=False).count()
    purge_broker()
    print(f"database: {connection.vendor}; broker: {broker_name()}")
    print(f"products inserted (bulk_create, setup): {args.products} in {created:.1f} s")
    print(f"generation_job_request: {job.total} drafts, {chunks.count()} chunks, {sent} "
          f"messages sent, in {seconds:.2f} s ({job.total / seconds:,.0f} drafts/s)")


def broker_name() -> str:
    from django.conf import settings

    return settings.CELERY_BROKER_URL.split(":", 1)[0]


def start_worker(var_dir: Path, device: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url(), "COPYDESK_VAR_DIR": str(var_dir),
           "COPYDESK_DEVICE": device, "LOG_LEVEL": "INFO"}
    log = (var_dir / "worker.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "copydesk", "worker", "-Q", "gpu,default",
         "--pool=solo", "--concurrency=1", "--prefetch-multiplier=1", "-l", "info",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if "ready." in (var_dir / "worker.log").read_text():
            return process
        if process.poll() is not None:
            break
        time.sleep(0.5)
    raise SystemExit(f"worker did not start:\n{(var_dir / 'worker.log').read_text()}")


def wait_for(job_id: int, timeout: float = 3600) -> float:
    from editorial.models import GenerationJob

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = GenerationJob.objects.get(pk=job_id)
        if job.is_finished:
            if job.failed:
                raise SystemExit(f"job {job_id}: {job.failed} drafts failed: {job.error}")
            return time.perf_counter()
        time.sleep(0.1)
    raise SystemExit(f"job {job_id} not finished after {timeout} s")


def pipeline(args, var_dir: Path) -> None:
    from django.conf import settings

    from editorial.facts import brand_rules, kind_spec, product_facts
    from editorial.models import Candidate, Draft, ModelVersion, Product
    from editorial.services import generation_job_request, model_version_register
    from editorial.workers.generation import request_seed
    from generation.engine import GenerationRequest, get_engine
    from generation.params import GenerationParams
    from generation.prompts import build_messages
    from generation.registry import SMOLLM2_MODEL_NAME

    model_path = args.model or str(settings.COPYDESK_MODEL_DIR / SMOLLM2_MODEL_NAME)
    model_version_register(name="bench", path=model_path, source=ModelVersion.Source.LOCAL,
                           make_default=True)
    params = {"candidates": args.candidates, "max_new_tokens": args.max_new_tokens,
              "seed": 1234}
    make_products(1, "WARM")
    make_products(args.products, "BENCH")
    purge_broker()

    worker = start_worker(var_dir, args.device)
    try:
        warm = generation_job_request(products=Product.objects.filter(sku__startswith="WARM-"),
                                      kinds=[args.kind], params=params, user=None)
        wait_for(warm.pk)
        products = Product.objects.filter(sku__startswith="BENCH-")
        started = time.perf_counter()
        job = generation_job_request(products=products, kinds=[args.kind], params=params,
                                     user=None)
        finished = wait_for(job.pk)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    pipeline_seconds = finished - started
    stored = Candidate.objects.filter(job=job).count()

    checked = GenerationParams.from_dict(params)
    requests = []
    drafts = Draft.objects.filter(job_items__job=job).select_related(
        "product__brand", "kind").order_by("job_items__pk")
    for draft in drafts:
        messages = build_messages(facts=product_facts(draft.product), kind=kind_spec(draft.kind),
                                  brand=brand_rules(draft.product.brand))
        requests.append(GenerationRequest(
            messages=messages, candidates=checked.candidates,
            seed=request_seed(checked.seed, draft.product.sku, draft.kind_id),
            max_new_tokens=min(checked.max_new_tokens, draft.kind.max_new_tokens),
        ))
    engine = get_engine(model_path, args.device)
    engine.generate(requests[:1], checked)  # warm-up, as the worker was
    started = time.perf_counter()
    results = engine.generate(requests, checked)
    engine_seconds = time.perf_counter() - started
    engine_tokens = sum(c.completion_tokens for r in results for c in r.candidates)
    job.refresh_from_db()

    overhead = (pipeline_seconds / engine_seconds - 1) * 100
    print(f"model: {model_path} on {engine.device}; {args.products} products x 1 kind "
          f"({args.kind}), candidates {args.candidates}, max new tokens {args.max_new_tokens}")
    print(f"database: {os.environ.get('DATABASE_URL', 'sqlite (temporary)').split(':')[0]}; "
          f"broker: {broker_name()}; chunk size {settings.COPYDESK_CHUNK_SIZE}")
    print(f"pipeline (request -> all candidates stored, 1 worker): {pipeline_seconds:.1f} s, "
          f"{args.products / pipeline_seconds * 60:.1f} products/min, {stored} candidates, "
          f"{job.tokens_generated} tokens")
    print(f"engine alone (same prompts, seeds, params): {engine_seconds:.1f} s, "
          f"{args.products / engine_seconds * 60:.1f} products/min, {engine_tokens} tokens")
    print(f"overhead: {overhead:.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--candidates", type=int, default=1)
    parser.add_argument("--kind", default="description")
    parser.add_argument("--device", default=os.environ.get("COPYDESK_DEVICE", "auto"))
    parser.add_argument("--model", help="model path (default: the installed default model)")
    parser.add_argument("--request-only", action="store_true",
                        help="only time generation_job_request for --products products")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="copydesk-bench-") as tmp:
        var_dir = Path(tmp)
        os.environ.setdefault("COPYDESK_MODEL_DIR", str(ROOT / "var" / "models"))
        setup_django(var_dir)
        if args.request_only:
            request_only(args)
        else:
            pipeline(args, var_dir)


if __name__ == "__main__":
    main()
