"""Generation throughput: the batched engine against a naive baseline, measured in one run.

Baseline: one plain ``model.generate`` per product (batch 1) with the same sampling settings.
Engine: ``Engine.generate`` with all requests at once. Both use the same weights, the same
product prompts (``build_messages`` over ``data/demo/catalog.jsonl``) and the same
``max_new_tokens``; with ``--fixed-length`` (the default) EOS is suppressed on both sides so
each sequence generates exactly ``max_new_tokens`` tokens and the work is equal.

Runs without Django (only ``generation``'s core is imported)::

    .venv/bin/python benchmarks/generation.py                      # CPU, real default model
    python benchmarks/generation.py --device cuda --random-weights --prompts 8192 \\
        --baseline-prompts 16                                       # GPU box, no weights there

``--random-weights`` builds the model from ``benchmarks/assets/smollm2`` (SmolLM2-135M's config
and tokenizer, a few MB) with random weights: throughput is the same as the real model's,
the text is gibberish. The last line is ``speedup: X.X`` (engine tokens/s / baseline tokens/s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ASSETS = Path(__file__).resolve().parent / "assets" / "smollm2"
CATALOG = ROOT / "data" / "demo" / "catalog.jsonl"
DEFAULT_MODEL = ROOT / "var" / "models" / "SmolLM2-135M-Instruct"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                    "special_tokens_map.json", "generation_config.json")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                        help="model directory (default: var/models/SmolLM2-135M-Instruct)")
    parser.add_argument("--random-weights", action="store_true",
                        help="random weights from benchmarks/assets/smollm2 (no weights needed)")
    parser.add_argument("--prompts", type=int, default=32, help="products for the engine")
    parser.add_argument("--baseline-prompts", type=int, default=None,
                        help="products for the slow baseline (default: --prompts); a rate, so "
                             "fewer is fine when --prompts is large")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--fixed-length", action=argparse.BooleanOptionalAction, default=True,
                        help="suppress EOS so every sequence generates exactly max-new-tokens")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (sets COPYDESK_TORCH_THREADS; default: all cores)")
    parser.add_argument("--batch-tokens", type=int, default=None,
                        help="engine token budget per batch (default: the engine's)")
    parser.add_argument("--max-batch-rows", type=int, default=None,
                        help="engine rows per batch (default: the engine's)")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="engine only (the speedup line then reads 'speedup: n/a')")
    args = parser.parse_args(argv)
    if args.prompts < 1 or args.max_new_tokens < 1:
        parser.error("--prompts and --max-new-tokens must be >= 1")
    if args.baseline_prompts is None:
        args.baseline_prompts = args.prompts
    args.baseline_prompts = max(1, min(args.baseline_prompts, args.prompts))
    return args


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # pragma: no cover - not Linux
        return float("nan")


def product_messages(count: int) -> list[list[dict]]:
    """Description prompts for ``count`` demo products (cycling through the catalog)."""
    from generation.prompts import KindSpec, ProductFacts, build_messages

    rows = [json.loads(line) for line in CATALOG.read_text().splitlines() if line.strip()]
    kind = KindSpec(
        code="description",
        label="product description",
        instructions="Write a product description of two or three sentences.",
        max_chars=600,
    )
    messages = []
    for i in range(count):
        row = rows[i % len(rows)]
        facts = ProductFacts(
            sku=row["sku"], title=row["title"], brand=row.get("brand", ""),
            category=row.get("category", ""), attributes=row.get("attributes") or {},
            locale=row.get("locale", "en"),
        )
        messages.append(build_messages(facts=facts, kind=kind))
    return messages


def _random_weight_model(dest: Path) -> Path:
    """SmolLM2-135M's architecture with random weights, plus its real tokenizer, in ``dest``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(ASSETS)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(dest)
    del model
    for name in _TOKENIZER_FILES:
        if (ASSETS / name).is_file():
            shutil.copyfile(ASSETS / name, dest / name)
    return dest


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_baseline(engine, messages, params, *, fixed_length: bool) -> tuple[int, float]:
    """One plain ``model.generate`` per prompt; returns (generated tokens, seconds)."""
    import torch

    model, device = engine.model, engine.device
    eos = set(engine.eos_token_ids)
    tokens = 0
    _sync(device)
    started = time.perf_counter()
    with torch.inference_mode():
        for i, message in enumerate(messages):
            ids = torch.tensor([engine.prompt_ids(message)], device=device)
            torch.manual_seed(i)
            output = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=True,
                temperature=params.temperature,
                top_k=params.top_k,
                top_p=params.top_p,
                repetition_penalty=params.repetition_penalty,
                max_new_tokens=params.max_new_tokens,
                min_new_tokens=params.max_new_tokens if fixed_length else None,
                pad_token_id=engine.pad_token_id,
                eos_token_id=engine.eos_token_ids,
            )
            new = output[0, ids.shape[1]:].tolist()
            cut = next((j for j, t in enumerate(new) if t in eos), len(new))
            tokens += cut
    _sync(device)
    return tokens, time.perf_counter() - started


def run_engine(engine, messages, params, *, fixed_length: bool) -> tuple[int, float]:
    from generation.engine import GenerationRequest

    requests = [GenerationRequest(messages=m, candidates=1, seed=i)
                for i, m in enumerate(messages)]
    _sync(engine.device)
    started = time.perf_counter()
    results = engine.generate(requests, params, ignore_eos=fixed_length)
    _sync(engine.device)
    seconds = time.perf_counter() - started
    return sum(c.completion_tokens for r in results for c in r.candidates), seconds


def measure_bandwidth(device: str, gib: float = 2.0, repeats: int = 10) -> float:
    """Device memory bandwidth in bytes/s from a large device-to-device copy (read + write)."""
    import torch

    n = int(gib * 2**30) // 4
    src = torch.empty(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        dst.copy_(src)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    moved = 2 * src.numel() * src.element_size() * repeats
    del src, dst
    torch.cuda.empty_cache()
    return moved / seconds


def bandwidth_bound(engine, messages, params, bandwidth: float) -> float:
    """Tokens/s if every decode step only had to read the weights and the batch's KV cache once
    at ``bandwidth`` (prefill ignored): the roofline for memory-bound decoding."""
    weight_bytes = sum(p.numel() * p.element_size() for p in engine.model.parameters())
    kv_per_token = engine.kv_bytes_per_token()
    from generation.engine import GenerationRequest

    requests = [GenerationRequest(messages=m, candidates=1, seed=i)
                for i, m in enumerate(messages)]
    seconds = tokens = 0.0
    for rows, width, max_new in engine.batch_plan(requests, params):
        average_context = width + max_new / 2
        step_bytes = weight_bytes + rows * average_context * kv_per_token
        seconds += max_new * step_bytes / bandwidth
        tokens += rows * max_new
    return tokens / seconds


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.threads:
        os.environ["COPYDESK_TORCH_THREADS"] = str(args.threads)
    # The engine's OpenMP wait policy, for both sides: torch is loaded next.
    from generation.openmp import choose_wait_policy

    choose_wait_policy()
    import torch
    import transformers

    from generation.engine import Engine, cpu_threads
    from generation.params import GenerationParams

    params = GenerationParams(max_new_tokens=args.max_new_tokens, candidates=1)
    messages = product_messages(args.prompts)
    tmp = None
    try:
        if args.random_weights:
            tmp = Path(tempfile.mkdtemp(prefix="copydesk-bench-"))
            model_path = _random_weight_model(tmp)
        else:
            model_path = args.model
            if not (model_path / "config.json").is_file():
                print(f"No model at {model_path}: install it (manage.py install_default_model) "
                      "or pass --random-weights.", file=sys.stderr)
                return 2
        engine = Engine(model_path, device=args.device, batch_tokens=args.batch_tokens,
                        max_batch_rows=args.max_batch_rows)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    device = engine.device
    on_cuda = device.startswith("cuda")
    prompt_lengths = [len(engine.prompt_ids(m)) for m in messages]
    source = f"random weights, config {ASSETS.relative_to(ROOT)}" if args.random_weights else (
        model_path
    )
    print(f"model: {source}")
    print(f"device: {device} ({torch.cuda.get_device_name(device) if on_cuda else platform.processor() or platform.machine()}), "  # noqa: E501
          f"dtype: {engine.dtype}, threads: {torch.get_num_threads() if not on_cuda else '-'} "
          f"(cpu_threads()={cpu_threads()}), OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"python {platform.python_version()}")
    print(f"prompts: {args.prompts} engine / {args.baseline_prompts} baseline, prompt tokens "
          f"{min(prompt_lengths)}-{max(prompt_lengths)} (mean "
          f"{sum(prompt_lengths) / len(prompt_lengths):.0f}), max_new_tokens "
          f"{args.max_new_tokens}, fixed length: {args.fixed_length}")
    print(f"sampling: temperature {params.temperature}, top_k {params.top_k}, top_p "
          f"{params.top_p}, repetition_penalty {params.repetition_penalty}")
    print(f"engine: batch_tokens {engine.batch_tokens}, max_batch_rows {engine.max_batch_rows}, "
          f"load {engine.load_seconds:.1f} s")
    rss_loaded = _peak_rss_mb()

    # Warm up both paths (first-call allocations, lazy imports) outside the timings.
    warm = GenerationParams(max_new_tokens=4, candidates=1)
    run_baseline(engine, messages[:1], warm, fixed_length=True)
    run_engine(engine, messages[:2], warm, fixed_length=True)

    # The baseline runs half before and half after the engine, so a change in the load from
    # other processes during the run weighs on both sides alike.
    base_tokens, base_seconds = 0, 0.0
    # With fewer baseline prompts, take them evenly spread over the set so their mix of prompt
    # lengths (English / Chinese) matches the engine's.
    step = args.prompts / args.baseline_prompts
    baseline = [] if args.skip_baseline else [
        messages[int(i * step)] for i in range(args.baseline_prompts)
    ]
    first, second = baseline[: (len(baseline) + 1) // 2], baseline[(len(baseline) + 1) // 2 :]
    if first:
        tokens, seconds = run_baseline(engine, first, params, fixed_length=args.fixed_length)
        base_tokens, base_seconds = base_tokens + tokens, base_seconds + seconds
    rss_baseline = _peak_rss_mb()
    if on_cuda:
        torch.cuda.reset_peak_memory_stats()
    eng_tokens, eng_seconds = run_engine(engine, messages, params,
                                         fixed_length=args.fixed_length)
    eng_tps = eng_tokens / eng_seconds
    rss_engine = _peak_rss_mb()
    if second:
        tokens, seconds = run_baseline(engine, second, params, fixed_length=args.fixed_length)
        base_tokens, base_seconds = base_tokens + tokens, base_seconds + seconds
    base_tps = base_tokens / base_seconds if baseline else None
    if base_tps:
        print(f"baseline: {base_tokens} tokens in {base_seconds:.2f} s -> {base_tps:.1f} "
              f"tokens/s, {len(baseline) / base_seconds:.2f} products/s "
              f"(batch 1, {len(baseline)} products, half before and half after the engine)")
    batches = engine.batch_plan(
        [_request(m, i) for i, m in enumerate(messages)], params
    )
    print(f"engine: {eng_tokens} tokens in {eng_seconds:.2f} s -> {eng_tps:.1f} tokens/s, "
          f"{args.prompts / eng_seconds:.2f} products/s ({len(batches)} batches, up to "
          f"{max(b[0] for b in batches)} rows)")
    print(f"peak RSS: {_peak_rss_mb():.0f} MB (after load {rss_loaded:.0f} MB, after the first "
          f"baseline half {rss_baseline:.0f} MB, after the engine {rss_engine:.0f} MB; now "
          f"{_current_rss_mb():.0f} MB)")
    if on_cuda:
        print(f"peak GPU memory (engine): {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
        bandwidth = measure_bandwidth(device)
        bound = bandwidth_bound(engine, messages, params, bandwidth)
        print(f"measured bandwidth: {bandwidth / 1e9:.0f} GB/s; bandwidth bound "
              f"{bound:,.0f} tokens/s; engine at {eng_tps / bound:.1%} of the bound")
    print(f"speedup: {eng_tps / base_tps:.1f}" if base_tps else "speedup: n/a")
    return 0


def _request(messages, seed):
    from generation.engine import GenerationRequest

    return GenerationRequest(messages=messages, candidates=1, seed=seed)


if __name__ == "__main__":
    raise SystemExit(main())
