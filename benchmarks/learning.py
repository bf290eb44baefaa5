"""Learning from edits: does fine-tuning on approved copy make drafts that need less editing?

Takes any catalog the desk imports (generic CSV with ``description``, Shopify ``Body (HTML)``,
JSON Lines) whose products carry reference copy, splits the products 2/3 train and 1/3 held out
(shuffled by ``--seed``), treats the train products' reference copy as approved edits, fine-tunes
the default model on them (SFT records as ``editorial.training_data`` builds them, loss on the
completion only), and drafts the held-out products before and after with greedy decoding. The
reference copy is never shown to the model: the prompts carry title, brand, category and
attributes only.

Reported on the held-out products, before and after: mean normalized edit distance between draft
and reference (words for English, characters for Chinese — ``editorial.metrics``), chrF (character
n-grams 1..6, beta 2, as sacrebleu's default) and the flag rate (drafts with a blocking or warning
check). The last line is ``edit_distance: before=X after=Y``.

    .venv/bin/python benchmarks/learning.py --catalog data/demo/catalog.jsonl
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_MODEL = ROOT / "var" / "models" / "SmolLM2-135M-Instruct"


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--kind", default="description",
                        help="content kind (default description)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--seed", type=int, default=0, help="the train / held-out shuffle")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=640)
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--held-out", type=int, default=0,
                        help="draft only the first N held-out products (0: all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None,
                        help="where the fine-tuned model goes (default: a temporary folder)")
    return parser.parse_args(argv)


def load_catalog(path: Path) -> list[dict]:
    """Products with reference copy, read by the desk's own importer parsers."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "copydesk.settings")
    os.environ.setdefault("COPYDESK_VAR_DIR", tempfile.mkdtemp(prefix="copydesk-learning-"))
    import django

    django.setup()
    from editorial import importers

    text, _encoding = importers._decode(path.read_bytes(), path.name)
    fmt = importers._detect_format(text, path.name)
    parse = {"csv": importers._parse_csv, "shopify": importers._parse_shopify,
             "jsonl": importers._parse_jsonl}[fmt]
    products = []
    for record in parse(text, path.name):
        if isinstance(record, importers.RowError) or not (record.source_text or "").strip():
            continue
        locale = importers.locale_normalize(record.locale or "") or importers.locale_detect(
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


def draft_all(model_path, prompts, args):
    from generation.engine import Engine, GenerationRequest
    from generation.params import GenerationParams

    engine = Engine(model_path, args.device)
    params = GenerationParams.from_dict(
        {"do_sample": False, "max_new_tokens": args.max_new_tokens, "candidates": 1}
    )
    started = time.perf_counter()
    results = engine.generate(
        [GenerationRequest(messages=m, seed=i) for i, m in enumerate(prompts)], params
    )
    seconds = time.perf_counter() - started
    del engine
    return [r.candidates[0].text if r.candidates else "" for r in results], seconds


def score(drafts, held_out, facts, kind, brands):
    from editorial.metrics import normalized_edit_distance
    from generation.checks import check_text

    pairs = list(zip(drafts, held_out, strict=True))
    distances = [normalized_edit_distance(d, p["reference"]) for d, p in pairs]
    chrfs = [chrf(d, p["reference"]) for d, p in pairs]
    flagged = sum(
        1 for d, f, p in zip(drafts, facts, held_out, strict=True)
        if any(flag.severity in ("error", "warning")
               for flag in check_text(d, facts=f, kind=kind, brand=brands[p["brand"]]))
    )
    n = max(len(drafts), 1)
    return sum(distances) / n, sum(chrfs) / n, flagged / n


def house_copy_baseline(held_out, train) -> float:
    """Mean edit distance between each held-out product's reference and the train products'
    references in the same language and category (the same language where the category has
    none): what a draft scores that is house copy, just not about this product. A model that
    writes in the house style without copying the reference lands near here."""
    from editorial.metrics import normalized_edit_distance

    scores = []
    for product in held_out:
        same = [t for t in train if t["locale"] == product["locale"]]
        closer = [t for t in same if t["category"] == product["category"]] or same
        if closer:
            scores.append(sum(normalized_edit_distance(t["reference"], product["reference"])
                              for t in closer) / len(closer))
    return sum(scores) / max(len(scores), 1)


def main(argv=None) -> int:
    args = _parse_args(argv)
    if args.threads:
        os.environ["COPYDESK_TORCH_THREADS"] = str(args.threads)
    started = time.perf_counter()
    products = load_catalog(args.catalog)
    if len(products) < 3:
        raise SystemExit("need at least 3 products with reference copy")
    from editorial.training_data import TrainingExample, build_dataset
    from generation.finetune import FineTuneConfig, finetune
    from generation.prompts import BrandRules, ProductFacts, build_messages

    kind = kind_spec(args.kind)
    order = sorted(products, key=lambda p: p["sku"])
    random.Random(args.seed).shuffle(order)
    cut = round(len(order) * 2 / 3)
    train, held_out = order[:cut], order[cut:]
    if args.held_out:
        held_out = held_out[:args.held_out]
    brands = {p["brand"]: BrandRules(name=p["brand"]) if p["brand"] else None for p in order}

    def facts_of(p):
        # The reference copy is the target: it is not in the prompt.
        return ProductFacts(sku=p["sku"], title=p["title"], brand=p["brand"],
                            category=p["category"], attributes=p["attributes"],
                            locale=p["locale"])

    def messages_of(p):
        return build_messages(facts=facts_of(p), kind=kind, brand=brands[p["brand"]])

    def examples(items):
        return [TrainingExample(sku=p["sku"], brand=p["brand"], kind=kind.code,
                                messages=tuple(messages_of(p)), approved_text=p["reference"])
                for p in items]

    train_records = build_dataset(examples(train), format="sft").records
    validation_records = build_dataset(examples(held_out), format="sft").records
    held_facts = [facts_of(p) for p in held_out]
    prompts = [messages_of(p) for p in held_out]
    print(f"catalog: {args.catalog} ({len(products)} products with reference copy); "
          f"train {len(train)}, held out {len(held_out)} (seed {args.seed})", flush=True)

    before_drafts, before_gen = draft_all(args.model, prompts, args)
    before = score(before_drafts, held_out, held_facts, kind, brands)
    print(f"before: drafted {len(prompts)} in {before_gen:.0f}s", flush=True)

    out = args.out or Path(tempfile.mkdtemp(prefix="copydesk-learning-model-")) / "model"
    config = FineTuneConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                            grad_accum=args.grad_accum, lora=args.lora,
                            max_length=args.max_length)
    result = finetune(
        base_path=args.model, output_dir=out, train=train_records,
        validation=validation_records, config=config, device=args.device,
        progress=lambda s, t, loss: print(f"  step {s}/{t} loss {loss:.4f}", flush=True),
    )
    print(f"fine-tuned in {result.seconds:.0f}s: {result.steps} steps; held-out loss "
          f"{result.before.loss:.4f} -> {result.after.loss:.4f} (perplexity "
          f"{result.before.perplexity:.2f} -> {result.after.perplexity:.2f})", flush=True)

    after_drafts, after_gen = draft_all(out, prompts, args)
    after = score(after_drafts, held_out, held_facts, kind, brands)
    print(f"after: drafted {len(prompts)} in {after_gen:.0f}s", flush=True)
    print("")
    print("| held-out products | edit distance | chrF | flag rate |")
    print("| --- | --- | --- | --- |")
    print(f"| before ({args.model.name}) | {before[0]:.3f} | {before[1]:.1f} | {before[2]:.0%} |")
    print(f"| after (fine-tuned) | {after[0]:.3f} | {after[1]:.1f} | {after[2]:.0%} |")
    total = time.perf_counter() - started
    print(f"house-copy baseline (another product's reference, same language and category): "
          f"edit distance {house_copy_baseline(held_out, train):.3f}")
    print(f"ratio after/before: {after[0] / before[0]:.3f}; total {total:.0f}s")
    print(f"sample after: {after_drafts[0][:300]!r}")
    print(f"edit_distance: before={before[0]:.3f} after={after[0]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
