"""A kind's character limit as a token budget for a given tokenizer and language."""

from __future__ import annotations

import json
import logging
import math

from .rules import _CATALOG, _is_zh
from .vocabulary import _tokenizer_key

logger = logging.getLogger(__name__)



# token_budget: tokens = ceil(max_chars / chars_per_token * (1 + margin)) + slack, clamped.
BUDGET_MARGIN = 0.2



BUDGET_SLACK = 8



BUDGET_FLOOR = 16



BUDGET_CEILING = 1024



_SAMPLES = {
    "en": (
        "The Fjell kettle does one job and does it quietly. Its 1.7 L body is 18/8 stainless "
        "steel with a brushed finish that hides fingerprints, and the 2200 W element brings a "
        "full load to the boil without keeping you waiting. Auto shut-off and boil-dry "
        "protection mean you can walk away once it switches off.",
        "Skarp is the knife you will reach for on most days. Its 20 cm blade is long enough to "
        "halve a cabbage and nimble enough for a shallot, and the handle is oiled oak, warm in "
        "the hand. Wash it by hand and dry it straight away.",
    ),
    "zh": (
        "这款铁观音采自福建安溪，是2024年的春茶，以传统炭焙工艺焙制。开汤后焙火香里透出兰花香，"
        "茶汤醇厚，回甘明显，适合喜欢浓一些口感的茶友。建议用100℃沸水冲泡。",
        "大红袍产自福建武夷山，这一款走中足火路线，入口岩韵明显，香气里带着桂皮与焦糖的温暖气息，"
        "喝完口中久久留香。净含量128克，分装成16袋8克的独立小泡袋。",
    ),
}



_BUDGETS: dict[tuple, float] = {}



def _sample_texts(group: str) -> list[str]:
    """Descriptions of the demo catalog in that language (the fixed samples without it)."""
    texts: list[str] = []
    try:
        with _CATALOG.open(encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if not line:
                    continue
                item = json.loads(line)
                if ("zh" if _is_zh(item.get("locale", "")) else "en") == group:
                    texts.append(str(item.get("description") or ""))
    except (OSError, ValueError):
        texts = []
    texts = [t for t in texts if t.strip()]
    return texts or list(_SAMPLES[group])



def chars_per_token(tokenizer, locale: str) -> float:
    """Characters per token of ``tokenizer`` on copy in ``locale`` (the demo catalog's
    descriptions), measured once per tokenizer and language."""
    group = "zh" if _is_zh(locale) else "en"
    key = (_tokenizer_key(tokenizer), group)
    cached = _BUDGETS.get(key)
    if cached is None:
        texts = _sample_texts(group)
        chars = sum(len(t) for t in texts)
        tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
        cached = _BUDGETS[key] = chars / max(1, tokens)
    return cached



def token_budget(max_chars: int, tokenizer, locale: str) -> int:
    """Max new tokens for copy of at most ``max_chars`` characters in ``locale``: the limit
    over the tokenizer's characters per token, plus a margin (``BUDGET_MARGIN`` and
    ``BUDGET_SLACK`` tokens, so copy near the limit is not cut mid-sentence), between
    ``BUDGET_FLOOR`` and ``BUDGET_CEILING``."""
    if max_chars < 1:
        raise ValueError("max_chars must be >= 1")
    tokens = math.ceil(max_chars / chars_per_token(tokenizer, locale) * (1 + BUDGET_MARGIN))
    return max(BUDGET_FLOOR, min(BUDGET_CEILING, tokens + BUDGET_SLACK))

