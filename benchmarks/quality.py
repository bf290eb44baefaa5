"""Are first drafts worth editing? The usable share of first drafts, per language and kind.

Takes any catalog the desk imports whose products carry reference copy (the demo catalog by
default), holds out every third product (by a stable hash of its SKU) and drafts those with the
others' reference copy as the shop's approved examples; the held-out reference is never in a
prompt. Each arm of the ablation writes the same drafts with one recipe (model, examples, grounded
decoding, best of N) through ``generation.drafting``, the code the worker runs.

A draft is **usable** when its top candidate has no error flag (``generation.checks.is_usable``):
in the product's language, no number absent from the facts, no markdown/URL/prompt residue, not a
copy of the source text, within the length limit. Reported per arm, language and kind: usable
share, fact coverage (descriptions), repetition flags, chrF against the reference, prompt and
generated tokens, seconds per product and seconds per usable draft (seconds per product / usable
share: what an editor waits for one draft worth editing). The last line is
``quality: usable_en=X% usable_zh=Y% coverage=Z% s_per_usable=S`` for the first arm after the
baseline (the proposed default), with the baseline's seconds per usable draft beside it.

    .venv/bin/python benchmarks/quality.py                      # every arm, descriptions+titles
    .venv/bin/python benchmarks/quality.py --arms baseline,gemma --limit 6   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import chrf, kind_spec, load_catalog  # noqa: E402

MODELS = ROOT / "var" / "models"
BRANDS = ROOT / "data" / "demo" / "brands.json"


@dataclass(frozen=True)
class Arm:
    name: str
    model: str
    prompt_format: str
    use_examples: bool
    grounded: bool
    best_of: int  # 0: sample only the candidates shown, as before
    dtype: str = ""  # CPU weights; "": the engine's choice (``generation.engine.cpu_dtype``)
    nudge_facts: bool = True


# The baseline is today's default as it shipped: SmolLM2 in fp32, chat prompts without examples,
# no decoding rules, two candidates ranked by the checks. (It does get the engine's other gains,
# such as finished rows leaving the batch, so the ratio to it understates the change.)
ARMS = {
    "baseline": Arm("baseline: SmolLM2, plain chat prompt", "SmolLM2-135M-Instruct", "chat",
                    False, False, 0, "float32"),
    "smollm2": Arm("SmolLM2 + examples + grounded + best of 6", "SmolLM2-135M-Instruct", "chat",
                   True, True, 6),
    "gemma": Arm("Gemma 3 270M + examples + grounded + best of 6", "gemma-3-270m", "completion",
                 True, True, 6),
    "gemma-no-examples": Arm("Gemma, no examples", "gemma-3-270m", "completion", False, True, 6),
    "gemma-ungrounded": Arm("Gemma, no grounded decoding", "gemma-3-270m", "completion", True,
                            False, 6),
    "gemma-no-best-of": Arm("Gemma, no best of N", "gemma-3-270m", "completion", True, True, 0),
    "gemma-no-nudge": Arm("Gemma, no nudge towards the facts", "gemma-3-270m", "completion",
                          True, True, 6, nudge_facts=False),
    "smollm2-no-examples": Arm("SmolLM2, no examples", "SmolLM2-135M-Instruct", "chat", False,
                               True, 6),
    "smollm2-ungrounded": Arm("SmolLM2, no grounded decoding", "SmolLM2-135M-Instruct", "chat",
                              True, False, 6),
}
DEFAULT_ARMS = ("baseline,gemma,smollm2,gemma-no-examples,gemma-ungrounded,gemma-no-best-of,"
                "gemma-no-nudge")


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, default=ROOT / "data" / "demo" / "catalog.jsonl")
    parser.add_argument("--kinds", default="description,title")
    parser.add_argument("--arms", default=DEFAULT_ARMS,
                        help=f"comma-separated, of: {', '.join(ARMS)}")
    parser.add_argument("--limit", type=int, default=0,
                        help="draft only the first N held-out products per language (0: all)")
    parser.add_argument("--examples", type=int, default=3)
    parser.add_argument("--candidates", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--show", type=int, default=2,
                        help="print this many drafts per arm, language and kind")
    parser.add_argument("--json", type=Path, default=None, help="write every draft here")
    return parser.parse_args(argv)


def held_out(product: dict) -> bool:
    return zlib.crc32(product["sku"].encode()) % 3 == 0


def brand_rules_for(products):
    from generation.prompts import BrandRules

    known = {}
    if BRANDS.is_file():
        for brand in json.loads(BRANDS.read_text(encoding="utf-8")):
            known[brand["name"]] = BrandRules(
                name=brand["name"], voice=brand.get("voice", ""),
                audience=brand.get("audience", ""),
                banned_terms=tuple(brand.get("banned_terms", ())),
                required_terms=tuple(brand.get("required_terms", ())),
                length_limits=brand.get("length_limits", {}),
            )
    return {p["brand"]: known.get(p["brand"]) or (BrandRules(name=p["brand"]) if p["brand"]
                                                  else None) for p in products}


def facts_of(product: dict, *, with_reference: bool = False):
    from generation.prompts import ProductFacts

    return ProductFacts(sku=product["sku"], title=product["title"], brand=product["brand"],
                        category=product["category"], attributes=product["attributes"],
                        locale=product["locale"],
                        source_text=product["reference"] if with_reference else "")


def reference_of(product: dict, kind_code: str) -> str:
    return product["title"] if kind_code == "title" else product["reference"]


def examples_for(product: dict, pool: list[dict], kind_code: str, k: int):
    """The shop's approved copy most like this product (``generation.examples`` ranks them as
    the desk's selector does), as ``(facts, text)``."""
    from generation.examples import rank_examples

    same_locale = [p for p in pool if p["locale"] == product["locale"] and p is not product]
    ranked = rank_examples(facts_of(product), [(facts_of(p), p) for p in same_locale])
    return [(facts_of(p), reference_of(p, kind_code)) for p in ranked[:k]]


def run_arm(arm: Arm, targets, pool, kinds, brands, args):
    from generation.drafting import DraftSpec, Recipe, draft_requests, rank_candidates
    from generation.engine import Engine
    from generation.params import GenerationParams

    path = MODELS / arm.model  # a fine-tuned model elsewhere is named by its absolute path
    if not path.is_dir():
        raise SystemExit(f"{path} is missing: run `make model` first")
    import torch

    engine = Engine(path, args.device, dtype=getattr(torch, arm.dtype) if arm.dtype else None)
    params = GenerationParams(candidates=args.candidates, best_of=arm.best_of, seed=args.seed)
    recipe = Recipe(prompt_format=arm.prompt_format, use_examples=arm.use_examples,
                    grounded=arm.grounded, nudge_facts=arm.nudge_facts)
    rows = []
    for kind in kinds:
        specs = [
            DraftSpec(
                facts=facts_of(product), kind=kind, brand=brands[product["brand"]],
                examples=examples_for(product, pool, kind.code, args.examples),
                seed=zlib.crc32(f"{product['sku']}\x1f{kind.code}".encode()) ^ args.seed,
                max_new_tokens=kind_max_new_tokens(kind.code),
            )
            for product in targets
        ]
        requests = draft_requests(specs, recipe=recipe, sampled=params.sampled,
                                  tokenizer=engine.tokenizer)
        started = time.perf_counter()
        results = engine.generate([request for _, request in requests], params)
        seconds = time.perf_counter() - started
        for product, spec, result in zip(targets, specs, results, strict=True):
            best = rank_candidates([c.text for c in result.candidates],
                                   [c.completion_tokens for c in result.candidates], spec,
                                   keep=params.candidates)
            top = best[0] if best else None
            rows.append({
                "arm": arm.name, "sku": product["sku"], "locale": product["locale"],
                "kind": kind.code, "text": top.text if top else "",
                "usable": bool(top and top.usable), "coverage": top.coverage if top else 0.0,
                "flags": [f.code for f in top.flags if f.severity == "error"] if top else [],
                "repetition": bool(top and any(f.code == "repetition" for f in top.flags)),
                "chrf": chrf(top.text if top else "", reference_of(product, kind.code)),
                "prompt_tokens": result.prompt_tokens,
                "generated_tokens": sum(c.completion_tokens for c in result.candidates),
                "seconds": seconds / max(len(targets), 1),
            })
    del engine
    return rows


def kind_max_new_tokens(code: str) -> int:
    import importlib

    seed = importlib.import_module("editorial.migrations.0002_seed_kinds_and_roles")
    return next(max_new for kind_code, _l, _c, max_new, _i in seed.KINDS if kind_code == code)


def summarize(rows):
    n = max(len(rows), 1)
    usable = sum(r["usable"] for r in rows) / n
    seconds = sum(r["seconds"] for r in rows) / n
    return {
        "n": len(rows), "usable": usable,
        "coverage": sum(r["coverage"] for r in rows) / n,
        "repetition": sum(r["repetition"] for r in rows) / n,
        "chrf": sum(r["chrf"] for r in rows) / n,
        "prompt_tokens": sum(r["prompt_tokens"] for r in rows) / n,
        "generated_tokens": sum(r["generated_tokens"] for r in rows) / n,
        "seconds": seconds,
        "s_per_usable": seconds / usable if usable else float("inf"),
    }


def main(argv=None) -> int:
    args = _parse_args(argv)
    os.environ.setdefault("COPYDESK_TORCH_THREADS", str(len(os.sched_getaffinity(0))))
    products = load_catalog(args.catalog)
    pool = [p for p in products if not held_out(p)]
    targets = [p for p in products if held_out(p)]
    if args.limit:
        targets = ([p for p in targets if p["locale"] == "en"][:args.limit]
                   + [p for p in targets if p["locale"] != "en"][:args.limit])
    kinds = [kind_spec(code) for code in args.kinds.split(",")]
    brands = brand_rules_for(products)
    counts = {loc: sum(p["locale"] == loc for p in targets) for loc in ("en", "zh-hans")}
    print(f"catalog {args.catalog.name}: {len(products)} products, {len(targets)} held out "
          f"({counts['en']} en, {counts['zh-hans']} zh), kinds {args.kinds}", flush=True)
    all_rows = []
    arms = [ARMS[name] for name in args.arms.split(",")]
    for arm in arms:
        started = time.perf_counter()
        rows = run_arm(arm, targets, pool, kinds, brands, args)
        all_rows.extend(rows)
        print(f"{arm.name}: {time.perf_counter() - started:.0f}s", flush=True)
        for locale in ("en", "zh-hans"):
            for kind in kinds:
                shown = [r for r in rows if r["locale"] == locale and r["kind"] == kind.code]
                for r in shown[:args.show]:
                    mark = "usable" if r["usable"] else "NOT usable " + ",".join(r["flags"])
                    print(f"  [{locale} {kind.code} {r['sku']}] ({mark}) {r['text'][:300]!r}")
    if args.json:
        args.json.write_text(json.dumps(all_rows, ensure_ascii=False, indent=1))

    print()
    print("| arm | lang | kind | n | usable | coverage | repetition | chrF | prompt tok | "
          "gen tok | s/product | s/usable |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for arm in arms:
        for locale in ("en", "zh-hans"):
            for kind in kinds:
                rows = [r for r in all_rows if r["arm"] == arm.name and r["locale"] == locale
                        and r["kind"] == kind.code]
                if not rows:
                    continue
                s = summarize(rows)
                print(f"| {arm.name} | {locale} | {kind.code} | {s['n']} | {s['usable']:.0%} | "
                      f"{s['coverage']:.0%} | {s['repetition']:.0%} | {s['chrf']:.1f} | "
                      f"{s['prompt_tokens']:.0f} | {s['generated_tokens']:.0f} | "
                      f"{s['seconds']:.2f} | {s['s_per_usable']:.2f} |")
    print()
    overall = {arm.name: summarize([r for r in all_rows if r["arm"] == arm.name]) for arm in arms}
    for arm in arms:
        s = overall[arm.name]
        print(f"{arm.name}: usable {s['usable']:.0%}, s/usable {s['s_per_usable']:.2f}")
    chosen = arms[1] if len(arms) > 1 else arms[0]

    def usable_in(locale):
        rows = [r for r in all_rows if r["arm"] == chosen.name and r["locale"] == locale]
        return summarize(rows)["usable"]

    descriptions = [r for r in all_rows if r["arm"] == chosen.name and r["kind"] == "description"]
    coverage = summarize(descriptions)["coverage"] if descriptions else 0.0
    baseline = overall[arms[0].name]["s_per_usable"]
    ratio = overall[chosen.name]["s_per_usable"] / baseline if baseline not in (0,
                                                                               float("inf")) else 0
    print(f"s_per_usable ratio {chosen.name} / {arms[0].name}: {ratio:.2f} (target <= 0.33)")
    print(f"quality: usable_en={usable_in('en'):.0%} usable_zh={usable_in('zh-hans'):.0%} "
          f"coverage={coverage:.0%} s_per_usable={overall[chosen.name]['s_per_usable']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
