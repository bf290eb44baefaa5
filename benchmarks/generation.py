"""Generation throughput: the batched engine against two baselines, measured in one run.

The work is the desk's own: the worker's drafting recipe (``generation.drafting``) over the demo
catalog's products: description prompts in the model's format (completion documents with three
approved examples for a base model such as the default Gemma 3 270M, chat messages for
SmolLM2), best of N (``GenerationParams().sampled`` candidates per product, each its own row),
the same sampling settings and ``max_new_tokens``. With ``--fixed-length`` (the default) EOS is
suppressed everywhere and the grounded-decoding rules are left out (they end a draft at the
example separator), so every candidate generates exactly ``max_new_tokens`` tokens on every side.

- naive: one plain ``model.generate`` per product (``num_return_sequences`` = the candidates),
  the same weights the engine loads.
- llama.cpp (``--llamacpp``, the default where ``llama-cpp-python`` is installed): the same GGUF
  the model was converted from (the packaged one), the same token ids, one product after
  another, each product's candidates as concurrent sequences sharing its prompt's KV cache
  (``LlamaCpp``); ``--llama-threads`` / ``--llama-batch`` as the best setting found here.
- engine: ``Engine.generate`` with all products at once.

The baselines run half before and half after the engine, so a change in the machine's load
weighs on all sides alike. Runs without Django (only ``generation``'s core is imported)::

    .venv/bin/python benchmarks/generation.py                      # CPU, the desk's default model
    .venv/bin/python benchmarks/generation.py --model var/models/SmolLM2-135M-Instruct
    python benchmarks/generation.py --device cuda --random-weights --prompts 8192 \\
        --baseline-prompts 16 --no-llamacpp                         # GPU box, no weights there

llama-cpp-python is a benchmark-only extra (``bench`` in pyproject.toml; ``make install`` leaves
it out). It has no binary wheel and compiles llama.cpp (~15 minutes on two busy cores)::

    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON \\
      -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON \\
      -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \\
      .venv/bin/pip install -c constraints.txt "llama-cpp-python==0.3.36"

(On this VM the CPU advertises AMX but the hypervisor does not enable it: a ``GGML_NATIVE`` build
dies with SIGILL on the first AMX tile instruction. Elsewhere ``-DGGML_NATIVE=ON`` is enough. An
AMD EPYC VM has AVX512-VNNI but not the VEX-encoded AVX-VNNI: there ``-DGGML_AVX_VNNI=OFF``, or
the first decode dies with SIGILL; ``grep -o 'avx_vnni' /proc/cpuinfo`` tells.)
Run it with ``OMP_WAIT_POLICY=PASSIVE`` on a shared machine: llama.cpp and torch share libgomp,
and spinning threads made both 7-30x slower at a load of 4-5 on two cores.

``--random-weights`` builds the model from ``benchmarks/assets/smollm2`` (SmolLM2-135M's config
and tokenizer, a few MB) with random weights: throughput is the same as the real model's,
the text is gibberish (no llama.cpp side then). The last line is ``speedup: X.X vs_llamacpp: Y.Y``
(engine tokens/s over the naive loop's and over llama.cpp's; ``n/a`` for a side not run).
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
MODELS = ROOT / "var" / "models"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                    "special_tokens_map.json", "generation_config.json")
# The seed migration's description kind (its character limit is what the worker's token budget
# comes from); repeated here because this script runs without Django.
DESCRIPTION_CHARS = 1000
EXAMPLES = 3


def _default_model() -> Path:
    from generation.registry import DESK_DEFAULT_MODEL

    return MODELS / DESK_DEFAULT_MODEL


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None,
                        help="model directory (default: the desk's default model in var/models)")
    parser.add_argument("--random-weights", action="store_true",
                        help="random weights from benchmarks/assets/smollm2 (no weights needed)")
    parser.add_argument("--prompts", type=int, default=16, help="products for the engine")
    parser.add_argument("--baseline-prompts", type=int, default=4,
                        help="products for each slow baseline (a rate, so fewer is fine)")
    parser.add_argument("--candidates", type=int, default=None,
                        help="candidates sampled per product (default: the desk's best of N)")
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
    parser.add_argument("--skip-baseline", action="store_true", help="no naive loop")
    parser.add_argument("--llamacpp", action=argparse.BooleanOptionalAction, default=None,
                        help="run the llama.cpp baseline (default: if llama-cpp-python is there)")
    parser.add_argument("--llama-threads", type=int, default=None,
                        help="llama.cpp threads (default: the engine's)")
    parser.add_argument("--llama-batch", type=int, default=512,
                        help="llama.cpp prompt batch size (n_batch)")
    args = parser.parse_args(argv)
    if args.prompts < 1 or args.max_new_tokens < 1:
        parser.error("--prompts and --max-new-tokens must be >= 1")
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


def _catalog() -> list[dict]:
    return [json.loads(line) for line in CATALOG.read_text().splitlines() if line.strip()]


def _facts(row: dict):
    from generation.prompts import ProductFacts

    return ProductFacts(
        sku=row["sku"], title=row["title"], brand=row.get("brand", ""),
        category=row.get("category", ""), attributes=row.get("attributes") or {},
        locale=row.get("locale", "en"),
    )


def product_messages(count: int) -> list[list[dict]]:
    """Plain chat description prompts for ``count`` demo products (cycling through the catalog),
    without examples."""
    from generation.prompts import KindSpec, build_messages

    rows = _catalog()
    kind = KindSpec(code="description", label="product description",
                    instructions="Write a product description of two or three sentences.",
                    max_chars=600)
    return [build_messages(facts=_facts(rows[i % len(rows)]), kind=kind) for i in range(count)]


def desk_specs(count: int, *, max_new_tokens: int) -> list:
    """``DraftSpec``s for ``count`` demo products (cycling through the catalog): a description
    each, with the next ``EXAMPLES`` products of its language as the shop's approved examples
    (the catalog's own copy), as the worker builds them."""
    from generation.drafting import DraftSpec
    from generation.prompts import KindSpec

    rows = _catalog()
    kind = KindSpec(code="description", label="Description", max_chars=DESCRIPTION_CHARS,
                    instructions="Write the product description: one or two short paragraphs "
                                 "that tell a shopper what the product is, what it is made of "
                                 "and why it is useful, using only the facts given.")
    specs = []
    for i in range(count):
        row = rows[i % len(rows)]
        peers = [r for r in rows[i % len(rows) + 1:] + rows if r["locale"] == row["locale"]
                 and r["sku"] != row["sku"]][:EXAMPLES]
        specs.append(DraftSpec(
            facts=_facts(row), kind=kind,
            examples=[(_facts(r), r["description"]) for r in peers],
            seed=i, max_new_tokens=max_new_tokens,
        ))
    return specs


def desk_requests(engine, count: int, params, *, fixed_length: bool) -> list:
    """The worker's ``GenerationRequest``s (``draft_requests``) for ``count`` products, every one
    with ``params.max_new_tokens``; with ``fixed_length`` without decoding rules."""
    from generation.drafting import Recipe, draft_requests
    from generation.registry import detect_prompt_format

    specs = desk_specs(count, max_new_tokens=params.max_new_tokens)
    requests = [request for _, request in draft_requests(
        specs, recipe=Recipe(prompt_format=detect_prompt_format(engine.model_path)),
        sampled=params.sampled,
    )]
    for request in requests:
        request.max_new_tokens = params.max_new_tokens
        if fixed_length:
            request.rules = None
    return requests


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


def request_ids(engine, request) -> list[int]:
    return engine.prompt_ids(request.messages) if request.messages else engine.document_ids(
        request.prompt)


def run_baseline(engine, requests, params, *, fixed_length: bool) -> tuple[int, float]:
    """One plain ``model.generate`` per product (its candidates as ``num_return_sequences``);
    returns (generated tokens, seconds)."""
    import torch

    model, device = engine.model, engine.device
    eos = set(engine.eos_token_ids)
    tokens = 0
    _sync(device)
    started = time.perf_counter()
    with torch.inference_mode():
        for request in requests:
            ids = torch.tensor([request_ids(engine, request)], device=device)
            torch.manual_seed(request.seed)
            output = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=True,
                num_return_sequences=request.candidates,
                temperature=params.temperature,
                top_k=params.top_k,
                top_p=params.top_p,
                repetition_penalty=params.repetition_penalty,
                max_new_tokens=params.max_new_tokens,
                min_new_tokens=params.max_new_tokens if fixed_length else None,
                pad_token_id=engine.pad_token_id,
                eos_token_id=engine.eos_token_ids,
            )
            for row in output[:, ids.shape[1]:].tolist():
                tokens += next((j for j, t in enumerate(row) if t in eos), len(row))
    _sync(device)
    return tokens, time.perf_counter() - started


def run_engine(engine, requests, params, *, fixed_length: bool) -> tuple[int, float]:
    _sync(engine.device)
    started = time.perf_counter()
    results = engine.generate(requests, params, ignore_eos=fixed_length)
    _sync(engine.device)
    seconds = time.perf_counter() - started
    return sum(c.completion_tokens for r in results for c in r.candidates), seconds


def packaged_gguf(model_path: Path, scratch: Path) -> Path | None:
    """The GGUF a packaged model was converted from (its install marker names the model), or
    None for any other model."""
    from generation.registry import PACKAGED_MODELS, read_install_marker

    name = read_install_marker(model_path).get("name") or model_path.name
    spec = PACKAGED_MODELS.get(name)
    return spec.locate_gguf(scratch) if spec else None


class LlamaCpp:
    """llama.cpp through llama-cpp-python's C API on the same token ids, one product after
    another: the prompt is evaluated once, its KV cache is shared by the product's candidates
    (``llama_memory_seq_cp`` in a unified cache), and the candidates decode together as
    concurrent sequences of one batch, each with its own C sampler chain. (The binding's
    Python-level ``Llama.generate`` copies the 262k-entry logits into Python on every token:
    3.5x slower here, so it would understate llama.cpp.)"""

    def __init__(self, gguf: Path, *, threads: int, batch: int, context: int, sequences: int):
        import llama_cpp as lc
        from llama_cpp._logger import set_verbose

        set_verbose(False)  # llama.cpp logs every tensor and graph input otherwise
        self.lc = lc
        lc.llama_backend_init()
        self.model = lc.llama_model_load_from_file(str(gguf).encode(),
                                                   lc.llama_model_default_params())
        params = lc.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = context, batch, batch
        params.n_seq_max, params.n_threads, params.n_threads_batch = sequences, threads, threads
        # One unified cache, so copied sequences share the prompt's cells; all of a sliding-
        # window model's positions are kept, so the copies can be made.
        params.kv_unified, params.swa_full = True, True
        self.ctx = lc.llama_init_from_model(self.model, params)
        self.vocab = lc.llama_model_get_vocab(self.model)
        self.n_vocab = lc.llama_vocab_n_tokens(self.vocab)
        self.batch_size = batch
        self.batch = lc.llama_batch_init(max(batch, sequences), 0, sequences)

    def _sampler(self, params, seed: int, prompt: list[int], no_eos: list[int]):
        """transformers' order: repetition penalty over prompt and output, temperature, top-k,
        top-p, then the draw."""
        lc = self.lc
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_penalties(
            self.n_vocab, len(prompt) + params.max_new_tokens, params.repetition_penalty,
            0.0, 0.0))
        if no_eos:
            biases = (lc.llama_logit_bias * len(no_eos))(
                *[lc.llama_logit_bias(token, float("-inf")) for token in no_eos])
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_logit_bias(
                self.n_vocab, len(no_eos), biases))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(params.temperature))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_k(params.top_k))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(params.top_p, 1))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(seed))
        for token in prompt:
            lc.llama_sampler_accept(chain, token)
        return chain

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """One ``llama_decode`` of (token, position, sequence, wants logits) entries."""
        batch = self.batch
        batch.n_tokens = len(entries)
        for i, (token, position, sequence, logits) in enumerate(entries):
            batch.token[i], batch.pos[i] = token, position
            batch.n_seq_id[i], batch.seq_id[i][0], batch.logits[i] = 1, sequence, logits
        if self.lc.llama_decode(self.ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    def run(self, engine, requests, params, *, fixed_length: bool) -> tuple[int, float]:
        lc = self.lc
        eos = sorted({int(t) for t in engine.eos_token_ids} | {
            t for t in range(self.n_vocab) if lc.llama_vocab_is_eog(self.vocab, t)})
        tokens = 0
        started = time.perf_counter()
        memory = lc.llama_get_memory(self.ctx)
        for request in requests:
            lc.llama_memory_clear(memory, True)
            ids = request_ids(engine, request)
            for start in range(0, len(ids), self.batch_size):
                part = ids[start:start + self.batch_size]
                self._decode([(token, start + i, 0, start + i == len(ids) - 1)
                              for i, token in enumerate(part)])
            last = (len(ids) - 1) % self.batch_size
            rows = request.candidates
            for sequence in range(1, rows):
                lc.llama_memory_seq_cp(memory, 0, sequence, -1, -1)
            samplers = [self._sampler(params, request.seed * 1000 + c, ids,
                                      eos if fixed_length else []) for c in range(rows)]
            # The prompt's last logits serve every candidate's first token.
            alive = [(c, lc.llama_sampler_sample(samplers[c], self.ctx, last))
                     for c in range(rows)]
            for step in range(1, params.max_new_tokens + 1):
                alive = [(c, token) for c, token in alive if token not in eos]
                tokens += len(alive)
                if not alive or step == params.max_new_tokens:
                    break
                self._decode([(token, len(ids) + step - 1, c, True) for c, token in alive])
                alive = [(c, lc.llama_sampler_sample(samplers[c], self.ctx, i))
                         for i, (c, _token) in enumerate(alive)]
            for sampler in samplers:
                lc.llama_sampler_free(sampler)
        return tokens, time.perf_counter() - started


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


def bandwidth_bound(engine, requests, params, bandwidth: float) -> float:
    """Tokens/s if every decode step only had to read the weights and the batch's KV cache once
    at ``bandwidth`` (prefill ignored): the roofline for memory-bound decoding."""
    weight_bytes = sum(p.numel() * p.element_size() for p in engine.model.parameters())
    kv_per_token = engine.kv_bytes_per_token()
    seconds = tokens = 0.0
    for rows, width, max_new in engine.batch_plan(requests, params):
        average_context = width + max_new / 2
        step_bytes = weight_bytes + rows * average_context * kv_per_token
        seconds += max_new * step_bytes / bandwidth
        tokens += rows * max_new
    return tokens / seconds


def _split(items: list) -> tuple[list, list]:
    half = (len(items) + 1) // 2
    return items[:half], items[half:]


def _rate(tokens: int, seconds: float) -> float | None:
    return tokens / seconds if seconds else None


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

    defaults = GenerationParams()
    params = GenerationParams(max_new_tokens=args.max_new_tokens,
                              candidates=min(defaults.candidates, args.candidates or 99),
                              best_of=args.candidates or defaults.best_of)
    tmp = Path(tempfile.mkdtemp(prefix="copydesk-bench-"))
    try:
        model_path = args.model or _default_model()
        if args.random_weights:
            model_path = _random_weight_model(tmp)
        elif not (model_path / "config.json").is_file():
            print(f"No model at {model_path}: install it (make model) or pass "
                  "--random-weights.", file=sys.stderr)
            return 2
        engine = Engine(model_path, device=args.device, batch_tokens=args.batch_tokens,
                        max_batch_rows=args.max_batch_rows)
        requests = desk_requests(engine, args.prompts, params, fixed_length=args.fixed_length)
        llama = None
        use_llama = args.llamacpp
        if use_llama is None:
            import importlib.util

            use_llama = not args.random_weights and importlib.util.find_spec("llama_cpp")
        if use_llama:
            gguf = packaged_gguf(model_path, tmp)
            if gguf is None:
                print(f"{model_path} is not a packaged model: no GGUF for llama.cpp",
                      file=sys.stderr)
                return 2
            longest = max(len(request_ids(engine, r)) for r in requests)
            llama = LlamaCpp(gguf, threads=args.llama_threads or torch.get_num_threads(),
                             batch=args.llama_batch, sequences=params.sampled,
                             context=longest + params.sampled * args.max_new_tokens + 8)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # llama.cpp keeps its own mapping of the file
    device = engine.device
    on_cuda = device.startswith("cuda")
    prompt_lengths = [len(request_ids(engine, r)) for r in requests]
    source = f"random weights, config {ASSETS.relative_to(ROOT)}" if args.random_weights else (
        model_path
    )
    print(f"model: {source}")
    print(f"device: {device} ({torch.cuda.get_device_name(device) if on_cuda else platform.processor() or platform.machine()}), "  # noqa: E501
          f"dtype: {engine.dtype}, threads: {torch.get_num_threads() if not on_cuda else '-'} "
          f"(cpu_threads()={cpu_threads()}), OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}")
    print(f"work: {args.prompts} products engine / {args.baseline_prompts} per baseline, "
          f"{params.sampled} candidates each, prompt tokens {min(prompt_lengths)}-"
          f"{max(prompt_lengths)} (mean {sum(prompt_lengths) / len(prompt_lengths):.0f}), "
          f"max_new_tokens {args.max_new_tokens}, fixed length: {args.fixed_length}")
    print(f"sampling: temperature {params.temperature}, top_k {params.top_k}, top_p "
          f"{params.top_p}, repetition_penalty {params.repetition_penalty}")
    print(f"engine: batch_tokens {engine.batch_tokens}, max_batch_rows {engine.max_batch_rows}, "
          f"load {engine.load_seconds:.1f} s")
    if llama:
        print(f"llama.cpp: {gguf.name}, threads {args.llama_threads or torch.get_num_threads()}"
              f", n_batch {args.llama_batch}")
    rss_loaded = _peak_rss_mb()

    # Warm up every path (first-call allocations, lazy imports) outside the timings.
    warm = GenerationParams(max_new_tokens=4, candidates=1, best_of=0)
    run_baseline(engine, requests[:1], warm, fixed_length=True)
    run_engine(engine, requests[:2], warm, fixed_length=True)
    if llama:
        llama.run(engine, requests[:1], warm, fixed_length=True)

    # With fewer baseline products, take them evenly spread over the set so their mix of
    # prompt lengths (English / Chinese) matches the engine's.
    step = args.prompts / args.baseline_prompts
    baseline = [requests[int(i * step)] for i in range(args.baseline_prompts)]
    naive = [] if args.skip_baseline else baseline
    sides = {"naive": [0, 0.0], "llama.cpp": [0, 0.0]}

    def run_side(name, part):
        if not part:
            return
        runner = run_baseline if name == "naive" else llama.run
        tokens, seconds = runner(engine, part, params, fixed_length=args.fixed_length)
        sides[name][0] += tokens
        sides[name][1] += seconds

    run_side("naive", _split(naive)[0])
    run_side("llama.cpp", _split(baseline if llama else [])[0])
    rss_before = _peak_rss_mb()
    if on_cuda:
        torch.cuda.reset_peak_memory_stats()
    eng_tokens, eng_seconds = run_engine(engine, requests, params,
                                         fixed_length=args.fixed_length)
    eng_tps = eng_tokens / eng_seconds
    rss_engine = _peak_rss_mb()
    run_side("naive", _split(naive)[1])
    run_side("llama.cpp", _split(baseline if llama else [])[1])
    rates = {name: _rate(*side) for name, side in sides.items()}
    for name, count in (("naive", len(naive)), ("llama.cpp", len(baseline) if llama else 0)):
        if rates[name]:
            tokens, seconds = sides[name]
            print(f"{name}: {tokens} tokens in {seconds:.2f} s -> {rates[name]:.1f} tokens/s, "
                  f"{count / seconds:.2f} products/s ({count} products, half before and half "
                  "after the engine)")
    batches = engine.batch_plan(requests, params)
    print(f"engine: {eng_tokens} tokens in {eng_seconds:.2f} s -> {eng_tps:.1f} tokens/s, "
          f"{args.prompts / eng_seconds:.2f} products/s ({len(batches)} batches, up to "
          f"{max(b[0] for b in batches)} rows)")
    print(f"peak RSS: {_peak_rss_mb():.0f} MB (after load {rss_loaded:.0f} MB, before the engine "
          f"{rss_before:.0f} MB, after the engine {rss_engine:.0f} MB; now "
          f"{_current_rss_mb():.0f} MB), load average {os.getloadavg()[0]:.1f}")
    if on_cuda:
        print(f"peak GPU memory (engine): {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
        bandwidth = measure_bandwidth(device)
        bound = bandwidth_bound(engine, requests, params, bandwidth)
        print(f"measured bandwidth: {bandwidth / 1e9:.0f} GB/s; bandwidth bound "
              f"{bound:,.0f} tokens/s; engine at {eng_tps / bound:.1%} of the bound")

    def ratio(name):
        return f"{eng_tps / rates[name]:.1f}" if rates[name] else "n/a"

    print(f"speedup: {ratio('naive')} vs_llamacpp: {ratio('llama.cpp')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
