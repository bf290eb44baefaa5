"""Learning from edits: do approved edits make the next drafts better — as examples in the
prompt, through fine-tuning, or both?

Takes any catalog the desk imports whose products carry reference copy and holds out every third
product (the quality benchmark's split); the other products' reference copy stands for the
shop's approved edits. Fine-tunes the default model on them in the format it generates with
(completion documents for a base model, chat for an instruct model), with the records
``editorial.training_data`` builds for the desk's own fine-tunes (loss on the copy only), then
drafts the held-out products four ways through the worker's recipe (``generation.drafting``:
grounded decoding, best of N, ranked by the checks): the base model and the fine-tuned one, each
without and with examples of approved copy in the prompt. The held-out reference is never in a
prompt.

Reported: held-out loss per copy token before and after fine-tuning, and per arm the usable share
of first drafts (``generation.checks.is_usable``), fact coverage, chrF and edit distance against
the reference (words for English, characters for Chinese — ``editorial.metrics``), beside the
house-copy baseline (another product's approved copy as the draft). The last line is
``learning: loss=-X% usable: base=A% examples=B% finetuned=C% both=D%``.

    .venv/bin/python benchmarks/learning.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import kind_spec, load_catalog  # noqa: E402
from benchmarks.quality import MODELS, Arm, brand_rules_for, facts_of, held_out, run_arm  # noqa: E402

ARM_NAMES = ("base", "examples", "finetuned", "both")


def _parse_args(argv):
    from generation.registry import DESK_DEFAULT_MODEL

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, default=ROOT / "data" / "demo" / "catalog.jsonl")
    parser.add_argument("--kind", default="description",
                        help="content kind (default description: a title's reference is the "
                             "product title, which the prompt holds)")
    parser.add_argument("--model", type=Path, default=MODELS / DESK_DEFAULT_MODEL)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=640)
    parser.add_argument("--full", action="store_true",
                        help="fine-tune every weight (default: LoRA adapters, merged after)")
    parser.add_argument("--arms", default=",".join(ARM_NAMES),
                        help=f"which drafts to write, of: {', '.join(ARM_NAMES)}")
    parser.add_argument("--limit", type=int, default=0,
                        help="draft only the first N held-out products per language (0: all)")
    parser.add_argument("--examples", type=int, default=3)
    parser.add_argument("--candidates", type=int, default=2)
    parser.add_argument("--best-of", default="6",
                        help="candidates sampled per draft for the checks to rank; several "
                             "(\"6,0\") draft every arm at each (0: only the ones shown)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--show", type=int, default=2,
                        help="print this many drafts per arm and language")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the fine-tuned model goes (default: a temporary folder)")
    return parser.parse_args(argv)


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


def training_records(products, kind, brands, prompt_format):
    """SFT records as the desk builds them from approved copy that has no stored prompt: the
    product's own document (no examples), the approved text as the completion."""
    from editorial.training_data import TrainingExample, build_dataset
    from generation.prompts import build_prompt

    examples = []
    for product in products:
        prompt = build_prompt(facts=facts_of(product), kind=kind, brand=brands[product["brand"]],
                              prompt_format=prompt_format)
        examples.append(TrainingExample(
            sku=product["sku"], brand=product["brand"], kind=kind.code,
            messages=tuple(prompt.messages), approved_text=product["reference"],
            document=prompt.text,
        ))
    return build_dataset(examples, format="sft", prompt_format=prompt_format).records


def score_arm(rows, targets):
    from editorial.metrics import normalized_edit_distance

    references = {p["sku"]: p["reference"] for p in targets}
    n = max(len(rows), 1)
    return {
        "usable": sum(r["usable"] for r in rows) / n,
        "coverage": sum(r["coverage"] for r in rows) / n,
        "chrf": sum(r["chrf"] for r in rows) / n,
        "edit": sum(normalized_edit_distance(r["text"], references[r["sku"]]) for r in rows) / n,
        "seconds": sum(r["seconds"] for r in rows) / n,
    }


def main(argv=None) -> int:
    args = _parse_args(argv)
    os.environ.setdefault("COPYDESK_TORCH_THREADS", str(len(os.sched_getaffinity(0))))
    started = time.perf_counter()
    if not args.model.is_dir():
        raise SystemExit(f"{args.model} is missing: run `make model` first")
    products = load_catalog(args.catalog)
    from generation.finetune import FineTuneConfig, finetune
    from generation.registry import detect_prompt_format

    prompt_format = detect_prompt_format(args.model)
    kind = kind_spec(args.kind)
    brands = brand_rules_for(products)
    train = [p for p in products if not held_out(p)]
    targets = [p for p in products if held_out(p)]
    if args.limit:
        targets = ([p for p in targets if p["locale"] == "en"][:args.limit]
                   + [p for p in targets if p["locale"] != "en"][:args.limit])
    print(f"catalog {args.catalog.name}: {len(products)} products; train {len(train)}, held out "
          f"{len(targets)}; {args.model.name} ({prompt_format} prompts), kind {kind.code}",
          flush=True)

    out = args.out or Path(tempfile.mkdtemp(prefix="copydesk-learning-")) / "model"
    config = FineTuneConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                            grad_accum=args.grad_accum, lora=not args.full,
                            max_length=args.max_length)
    result = finetune(
        base_path=args.model, output_dir=out,
        train=training_records(train, kind, brands, prompt_format),
        validation=training_records(targets, kind, brands, prompt_format),
        config=config, device=args.device,
        progress=lambda s, t, loss: print(f"  step {s}/{t} loss {loss:.4f}", flush=True),
    )
    loss_change = result.after.loss / result.before.loss - 1
    print(f"fine-tuned ({'full' if args.full else 'LoRA'}) in {result.seconds:.0f}s, "
          f"{result.steps} steps: held-out loss {result.before.loss:.4f} -> "
          f"{result.after.loss:.4f} ({loss_change:+.0%})", flush=True)

    models = {"base": args.model, "examples": args.model, "finetuned": out, "both": out}
    settings = [int(n) for n in args.best_of.split(",")]
    scores, all_rows = {}, {}
    for best_of in settings:
        for name in args.arms.split(","):
            label = name if best_of == settings[0] else f"{name} (best of {best_of})"
            arm = Arm(label, str(models[name].resolve()), prompt_format,
                      use_examples=name in ("examples", "both"), grounded=True, best_of=best_of)
            arm_started = time.perf_counter()
            rows = run_arm(arm, targets, train, [kind], brands, args)
            scores[label], all_rows[label] = score_arm(rows, targets), rows
            print(f"{label}: {time.perf_counter() - arm_started:.0f}s", flush=True)
            for locale in ("en", "zh-hans"):
                for r in [r for r in rows if r["locale"] == locale][:args.show]:
                    mark = "usable" if r["usable"] else "NOT usable " + ",".join(r["flags"])
                    print(f"  [{locale} {r['sku']}] ({mark}) {r['text'][:300]!r}")

    print()
    print("| arm | lang | n | usable | coverage | chrF | edit distance | s/product |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, rows in all_rows.items():
        for locale in ("en", "zh-hans", "all"):
            part = [r for r in rows if locale in ("all", r["locale"])]
            s = score_arm(part, targets)
            print(f"| {name} | {locale} | {len(part)} | {s['usable']:.0%} | {s['coverage']:.0%} | "
                  f"{s['chrf']:.1f} | {s['edit']:.3f} | {s['seconds']:.2f} |")
    print(f"house-copy baseline (another product's reference, same language and category): "
          f"edit distance {house_copy_baseline(targets, train):.3f}")
    print(f"total {time.perf_counter() - started:.0f}s")
    usable = " ".join(f"{name}={s['usable']:.0%}" for name, s in scores.items()
                      if "(" not in name)
    print(f"learning: loss={loss_change:+.0%} usable: {usable}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
