"""The form of copy: its length, no contacts, markup, code or prompt residue, in the product's
language, not noise, not repeating or looping, not the source text copied."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterator

from ..i18n import gettext_noop
from ..prompts import BrandRules, KindSpec, ProductFacts, effective_max_chars
from .flags import ERROR, WARNING, Flag, _flag
from .matching import _CJK, _CJK_RE, _LATIN_WORD_RE, _Taken, _trie

# The longest text the desk checks or saves as copy: room to draft and cut (a few times the
# copy's limit, at least TEXT_MAX_FLOOR), never more than TEXT_MAX_CEILING, so no request makes
# the checks, the diffs or a page do unbounded work.
TEXT_MAX_FACTOR = 4



TEXT_MAX_FLOOR = 2_000



TEXT_MAX_CEILING = 20_000



TEXT_TOO_LONG = gettext_noop(
    "The text is %(length)d characters long; at most %(max)d characters can be checked or "
    "saved for this copy. Shorten it.")



def max_text_chars(limit: int) -> int:
    """The longest text accepted as copy whose length limit is ``limit`` (0: no limit)."""
    if not limit:
        return TEXT_MAX_CEILING
    return min(TEXT_MAX_CEILING, max(TEXT_MAX_FLOOR, TEXT_MAX_FACTOR * int(limit)))



def check_length(text: str, *, kind: KindSpec, brand: BrandRules | None = None) -> list[Flag]:
    """Only the length check: for text too long to check as a whole (see ``max_text_chars``)."""
    return _check_length(text, kind, brand)



def _check_length(text: str, kind: KindSpec, brand: BrandRules | None) -> list[Flag]:
    """Any overrun is an error: the limits are the shop's field limits (an SEO title of 60
    characters, a meta description of 160), and a shop cuts what is longer."""
    limit = effective_max_chars(kind, brand)
    if limit and len(text) > limit:
        if brand and brand.length_limits.get(kind.code):
            template = gettext_noop("The text is %(length)d characters long; the brand's "
                                    "limit for %(kind)s is %(limit)d.")
        else:
            template = gettext_noop("The text is %(length)d characters long; the limit for "
                                    "%(kind)s is %(limit)d.")
        return [_flag("too_long", ERROR, template, limit, len(text),
                      length=len(text), kind=kind.label, limit=limit)]
    return []



# Each pattern starts only where a run of the characters it repeats starts (the look-behinds),
# so a long run that is no address ("a-a-a-…", "1.1.1.…") is read once, not once per position.
_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")



_URL_RE = re.compile(r"(?<![A-Za-z0-9_])(?:https?://|www\.)[^\s<>\"'，。）)]+", re.IGNORECASE)



# A host name ("northwind-shop.com", "shop.example.co.uk"): dot-separated labels, read as one
# token; ``_host_spans`` keeps it up to its last label that is a top-level domain.
_HOST_RE = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)+")



_TOP_LEVEL_DOMAINS = frozenset(
    "com net org cn io shop store co uk de info biz".split()
)



_URL_PATH_RE = re.compile(r"/[^\s<>\"'，。）)]*")



_PHONE_RES = [
    re.compile(r"(?<![\w+])\+\d{1,3}[\s.-]?\(?\d{1,4}\)?(?:[\s.-]?\d{2,4}){2,4}(?!\d)"),
    re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)"),  # mainland mobile
    re.compile(r"(?<!\d)[48]00[\s-]?\d{3}[\s-]?\d{4}(?!\d)"),  # 400/800 hotlines
    re.compile(r"(?<![\d-])0\d{2,3}-\d{7,8}(?!\d)"),  # mainland landline
    re.compile(r"(?<![\d-])\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?!\d)"),  # North America
]



def _host_spans(text: str) -> Iterator[tuple[int, int]]:
    """Host names with a known top-level domain (and the path after one), as spans."""
    reached = 0
    for m in _HOST_RE.finditer(text):
        if m.start() < reached:
            continue  # inside the path of the address before
        labels = m.group(0).split(".")
        last = max((i for i in range(1, len(labels)) if labels[i].lower() in _TOP_LEVEL_DOMAINS),
                   default=0)
        if not last:
            continue
        end = m.start() + len(".".join(labels[: last + 1]))
        if text.startswith("/", end):
            end = _URL_PATH_RE.match(text, end).end()
        reached = end
        yield m.start(), end



def _check_contacts(text: str) -> list[Flag]:
    flags: list[Flag] = []
    taken = _Taken()

    for m in _EMAIL_RE.finditer(text):
        taken.add(*m.span())
        flags.append(_flag("email", ERROR,
                           gettext_noop('The text contains an e-mail address ("%(found)s").'),
                           m.start(), m.end(), found=m.group(0)))
    urls = [m.span() for m in _URL_RE.finditer(text)] + list(_host_spans(text))
    for start, end in sorted(urls, key=lambda span: (span[0], -span[1])):
        if taken.overlaps(start, end):
            continue
        taken.add(start, end)
        flags.append(_flag("url", ERROR,
                           gettext_noop('The text contains a web address ("%(found)s").'),
                           start, end, found=text[start:end]))
    for pattern in _PHONE_RES:
        for m in pattern.finditer(text):
            if taken.overlaps(*m.span()):
                continue
            taken.add(*m.span())
            flags.append(_flag("phone", ERROR,
                               gettext_noop('The text contains a phone number ("%(found)s").'),
                               m.start(), m.end(), found=m.group(0).strip()))
    return flags



_LEAK_ANYWHERE = re.compile(
    r"</?\s*product\s*>|<\|[a-z_]+\|>|\bproduct data\b|\bas an ai\b|\blanguage model\b"
    r"|\bsource text:|\bin\s+this\s+e-?mail\b|\breply\s+with\s+the\s+copy\s+only\b"
    r"|\bat\s+most\s+\d+\s+characters\b|\bkeep\s+it\s+under\s+\d+\s+characters\b"
    r"|商品资料|作为(?:一个)?(?:AI|人工智能)|请用简体中文作答|只输出文案|不超过\d+个字符",
    re.IGNORECASE,
)



_LEAK_START = re.compile(
    r"^\s*(?:sure[,!.]|certainly[,!.]|of\s+course[,!.]|以下是|好的[，,。!！]|当然[，,。!！])",
    re.IGNORECASE,
)



# Labels of the prompt (its data block, its task line, the completion format's entries) and
# a model's own headings for its answer, at the start of any line: "Task:", "Title:",
# "Description:", "标题：" … and the preambles "Here is", "Here's", "Here are".
_PROMPT_LABELS = (
    "task", "facts", "product facts", "product", "title", "product title", "description",
    "product description", "long description", "brand", "brand voice", "audience", "category",
    "attributes", "source text", "rules", "copy", "output", "response", "assistant", "system",
    "bullet points", "bullets", "slogan", "slogan / ad line", "ad line", "seo title",
    "seo description", "seo meta description", "meta description",
    "任务", "商品资料", "标题", "商品标题", "品牌", "品牌调性", "目标受众", "类目", "属性",
    "原始描述", "描述", "商品描述", "商品卖点", "卖点", "广告语", "常见问题", "规则", "文案",
    "输出",
)



_LEAK_LINE_START = re.compile(
    r"^[ \t]*(?:(?:here[ \t]+is|here's|here[ \t]+are)\b|"
    + _trie(((label, "") for label in _PROMPT_LABELS), r"[ \t]+")
    + r"[ \t]*[:：])",
    re.IGNORECASE | re.MULTILINE,
)



_PREAMBLE = gettext_noop('The text starts with a preamble ("%(found)s") instead of the copy.')



def _check_leftovers(text: str) -> list[Flag]:
    flags = []
    taken = _Taken()
    m = _LEAK_START.match(text)
    if m:
        start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
        taken.add(start, m.end())
        flags.append(_flag("prompt_leftover", ERROR, _PREAMBLE, start, m.end(),
                           found=m.group(0).strip()))
    for m in _LEAK_LINE_START.finditer(text):
        start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
        found = m.group(0).strip()
        end = start + len(found)
        if taken.overlaps(start, end):
            continue
        taken.add(start, end)
        if start == 0:
            flags.append(_flag("prompt_leftover", ERROR, _PREAMBLE, start, end, found=found))
        else:
            flags.append(_flag(
                "prompt_leftover", ERROR,
                gettext_noop('A line starts with leftover prompt text ("%(found)s") instead of '
                             "the copy."),
                start, end, found=found,
            ))
    for m in _LEAK_ANYWHERE.finditer(text):
        if taken.overlaps(*m.span()):
            continue
        flags.append(_flag(
            "prompt_leftover", ERROR,
            gettext_noop('The text contains leftover prompt or assistant text ("%(found)s").'),
            m.start(), m.end(), found=m.group(0),
        ))
    return flags



# Markup a shop field shows as literal characters: the copy must be plain text.
_MARKDOWN_RE = re.compile(
    r"^[ \t]{0,3}#{1,6}(?=[ \t]+\S)[^\n]{0,60}"  # heading: "### Features"
    r"|\*{2,}|(?<![A-Za-z0-9])_{2,}|_{2,}(?![A-Za-z0-9])"  # **bold**, __bold__
    r"|^[ \t]*[*+][ \t]+(?=\S)"  # "* item", "+ item" ("- item" is a plain bullet)
    r"|\[[^\[\]\n]{1,200}\]\([^()\s]{1,500}\)"  # [link](url)
    r"|^[ \t]{0,3}>[ \t]?(?=\S)"  # "> quote"
    r"|^[ \t]*(?:-{3,}|={3,})[ \t]*$"  # rule, or the completion format's separator
    r"|\|[ \t]*:?-{3,}:?[ \t]*\|",  # table: "|---|"
    re.MULTILINE,
)



_CODE_RE = re.compile(r"`{3,}[\w+-]{0,20}|~{3,}[\w+-]{0,20}|`[^`\n]{1,200}`|`", re.ASCII)



_JSON_RE = re.compile(
    r"\{[^{}\n]{0,200}\}|[{}｛｝]"  # braces: {"a": 1}, {product_name}
    r'|"[^"\n]{1,60}"[ \t]*:[ \t]*(?=["\[{\d]|true\b|false\b|null\b)'  # "key": value
    r'|\[[ \t]*(?=["{])'  # ["a", "b"]
)



_HTML_RE = re.compile(
    r"</?(?!\s*product\b)[A-Za-z][A-Za-z0-9]*(?:\s[^<>\n]{0,200})?/?>"
    r"|&(?:[A-Za-z]{2,8}|#\d{1,6}|#[xX][0-9A-Fa-f]{1,6});",
)



_MARKUP_CHECKS = (
    ("markdown", _MARKDOWN_RE,
     gettext_noop('The text contains Markdown formatting ("%(found)s"); the copy must be plain '
                  "text.")),
    ("code", _CODE_RE,
     gettext_noop('The text contains code formatting ("%(found)s"); the copy must be plain '
                  "text.")),
    ("json", _JSON_RE,
     gettext_noop('The text contains braces or JSON ("%(found)s"); the copy must be plain '
                  "text.")),
    ("html", _HTML_RE,
     gettext_noop('The text contains HTML ("%(found)s"); the copy must be plain text.')),
)



def _check_markup(text: str) -> list[Flag]:
    return [_flag(code, ERROR, template, m.start(), m.end(), found=m.group(0).strip())
            for code, pattern, template in _MARKUP_CHECKS for m in pattern.finditer(text)]



# Text addressed to the model rather than to shoppers: in product data it is an injection
# attempt (the data block keeps it inert, but an editor should know); in copy it is an echo.
_INSTRUCTION_RE = re.compile(
    r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+|these\s+)?"
    r"(?:previous\s+|prior\s+|above\s+|earlier\s+|preceding\s+)?"
    r"(?:instructions?|rules|prompts?|directions)\b"
    r"|\byou\s+are\s+now\b|\bsystem\s+prompt\b|\bnew\s+instructions?\s*:"
    r"|\bdo\s+not\s+follow\s+(?:the|your|any)\s+(?:rules|instructions)\b"
    r"|(?:忽略|无视|忘记|忘掉|不要理会)(?:之前|以上|上述|前面|所有|全部|一切)?的?"
    r"(?:所有|全部)?(?:指令|指示|规则|提示词?|要求|说明)"
    r"|你现在是|系统提示词?|新的?指令[：:]",
    re.IGNORECASE,
)



def instruction_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` addresses the model ("ignore all previous instructions", "忽略以上指令")."""
    return [m.span() for m in _INSTRUCTION_RE.finditer(text or "")]



def injection_findings(facts: ProductFacts) -> list[tuple[str, str]]:
    """``(field, excerpt)`` for each instruction-like passage in the product data, so the product
    can be flagged to editors before anyone trusts its drafts."""
    fields = [("title", facts.title), ("brand", facts.brand), ("category", facts.category),
              *((f"attributes.{key}", value) for key, value in facts.attributes.items()),
              ("source_text", facts.source_text)]
    findings = []
    for name, value in fields:
        for start, end in instruction_spans(value):
            findings.append((name, value[max(0, start - 20): end + 40].strip()))
    return findings



def _check_instructions(text: str) -> list[Flag]:
    return [_flag("instruction_echo", ERROR,
                  gettext_noop('The text repeats an instruction to the model ("%(found)s"): the '
                               "product data may carry a prompt injection."),
                  start, end, found=text[start:end])
            for start, end in instruction_spans(text)]



def _check_language(text: str, facts: ProductFacts) -> list[Flag]:
    # One Chinese character carries about as much as one English word, so compare those.
    latin = len(_LATIN_WORD_RE.findall(text))
    cjk = len(_CJK_RE.findall(text))
    if facts.is_zh:
        if latin >= 4 and latin > 2 * cjk:
            return [_flag("wrong_language", ERROR,
                          gettext_noop("The product is Chinese (zh-hans) but the text is mostly "
                                       "in Latin letters; it should be in Simplified Chinese."))]
    elif cjk >= 5 and cjk > latin:
        return [_flag("wrong_language", ERROR,
                      gettext_noop("The product is English but the text contains many Chinese "
                                   "characters; it should be in English."))]
    return []



# Characters no copy is written with: the replacement character (a cut multi-byte sequence),
# control pictures such as ␁, private-use code points.
_GARBAGE_RE = re.compile("[\ufffd\u2400-\u243f\ue000-\uf8ff]")



# Chinese copy made of rare characters is a model writing noise that looks like Chinese. The
# demo catalog's own copy has at most 2 characters outside GB2312's 3,755 common ones (2%).
_RARE_MIN, _RARE_SHARE = 3, 0.05



def _rare_hanzi(ch: str) -> bool:
    try:
        return ch.encode("gb2312")[0] >= 0xD8  # level 2 (0xD8-0xF7): the less common ones
    except UnicodeEncodeError:
        return True



def _check_garbled(text: str, facts: ProductFacts, blob: str) -> list[Flag]:
    flags = []
    m = _GARBAGE_RE.search(text)
    if m:
        flags.append(_flag("garbled", ERROR,
                           gettext_noop('The text contains "%(found)s", which is not a character '
                                        "of copy (broken or garbled output)."),
                           m.start(), m.end(), found=m.group(0)))
    if facts.is_zh:
        hanzi = _CJK_RE.findall(text)
        rare = sorted({ch for ch in hanzi if _rare_hanzi(ch) and ch not in blob})
        count = sum(1 for ch in hanzi if ch in rare)
        if count >= _RARE_MIN and count >= _RARE_SHARE * len(hanzi):
            flags.append(_flag("garbled", ERROR,
                               gettext_noop("%(count)d of %(total)d Chinese characters are rare "
                                            "ones (%(found)s): the text reads as noise, not "
                                            "copy."),
                               count=count, total=len(hanzi), found="".join(rare[:10])))
    return flags



_SENTENCE_RE = re.compile(r"[^.!?。！？;；\n]+[.!?。！？;；]*")



def _normalize_sentence(sentence: str) -> str:
    sentence = unicodedata.normalize("NFKC", sentence).lower()
    return " ".join(re.sub(r"[^\w\s]", " ", sentence).split())



def _tokens_for_distinct(text: str, zh: bool) -> list[str]:
    if zh:
        return [c for c in text if _CJK_RE.match(c) or c.isalnum()]
    return re.findall(r"\w+", text.lower())



def _check_repetition(text: str, facts: ProductFacts) -> list[Flag]:
    flags = []
    seen: dict[str, int] = {}
    min_len = 4 if facts.is_zh else 12
    for m in _SENTENCE_RE.finditer(text):
        key = _normalize_sentence(m.group(0))
        if len(key) < min_len:
            continue
        if key in seen:
            start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
            flags.append(_flag("repetition", WARNING,
                               gettext_noop('The sentence "%(sentence)s" appears more than once.'),
                               start, m.end(), sentence=m.group(0).strip()))
        else:
            seen[key] = m.start()
    tokens = _tokens_for_distinct(text, facts.is_zh)
    bigrams = list(zip(tokens, tokens[1:], strict=False))
    if len(bigrams) >= 20:
        ratio = len(set(bigrams)) / len(bigrams)
        if ratio < 0.5:
            flags.append(_flag("repetition", WARNING,
                               gettext_noop("The text repeats itself: only %(share)s of its word "
                                            "pairs are distinct."),
                               share=f"{ratio:.0%}"))
    return flags



_CLAUSE_RE = re.compile(r"[^.!?。！？;；:：,，、\n]+")



_LOOP_TIMES = 3



def _clause_size(key: str, zh: bool) -> int:
    """How long a normalized clause is: Chinese characters for Chinese copy, words for English."""
    return len(_CJK_RE.findall(key)) if zh else len(key.split())



def _short_phrase(prev: re.Match[str] | None, clause: re.Match[str], key: str, text: str,
                  zh: bool) -> tuple[str, int] | None:
    """A clause too short to be a phrase alone ("易冲洗", "dishwasher safe"), read with the end of
    the clause before it in the same line ("乳化，易冲洗", "glaze, dishwasher safe"): its key and
    where it starts. Chinese writes short clauses back to back, so "乳化，易冲洗" said three times
    is a loop though neither of its clauses is one. The tail is two Chinese characters or one
    word, whatever came before it, so "遇水乳化，易冲洗" and "加水后乳化，易冲洗" are the same
    phrase; ``None`` when there is no such tail or the phrase is still too short."""
    if prev is None or "\n" in text[prev.end():clause.start()]:
        return None
    before = prev.group(0).rstrip()
    if zh:
        tail = before[-2:]
        if len(tail) < 2 or not all(_CJK_RE.match(ch) for ch in tail):
            return None
    else:
        words = before.split()
        if not words:
            return None
        tail = words[-1]
    phrase = f"{_normalize_sentence(tail)} {key}"
    if _clause_size(phrase, zh) < (4 if zh else 3):
        return None
    return phrase, prev.start() + len(before) - len(tail)



def _check_looping(text: str, facts: ProductFacts) -> list[Flag]:
    """A clause (4+ Chinese characters, 3+ words) said three times, or three clauses said twice
    each: small models circle back to the same phrases ("每泡约7克" five times in one
    description). A shorter clause counts with the end of the clause before it ("乳化，易冲洗"),
    for the three-times rule only: two short phrases said twice each are too common in plain
    copy to call a loop. Sentences that repeat whole are ``repetition``; this catches the loop
    that varies the sentences around it."""
    zh = facts.is_zh
    counts: dict[str, list[tuple[int, int]]] = {}
    short: dict[str, list[tuple[int, int]]] = {}
    prev = None
    for m in _CLAUSE_RE.finditer(text):
        key = _normalize_sentence(m.group(0))
        size = _clause_size(key, zh)
        start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
        end = m.start() + len(m.group(0).rstrip())
        if size >= (4 if zh else 3):
            counts.setdefault(key, []).append((start, end))
        elif size >= (2 if zh else 1) and (found := _short_phrase(prev, m, key, text, zh)):
            short.setdefault(found[0], []).append((found[1], end))
        if key:
            prev = m
    repeated = sorted((found for found in counts.values() if len(found) > 1),
                      key=lambda found: (-len(found), found[1][0]))
    looped = sorted((found for found in (*counts.values(), *short.values())
                     if len(found) >= _LOOP_TIMES),
                    key=lambda found: (-len(found), found[_LOOP_TIMES - 1][0]))
    if looped:
        found = looped[0]
        start, end = found[_LOOP_TIMES - 1]
        template = gettext_noop('The phrase "%(phrase)s" appears %(times)d times: the text goes '
                                "in circles.")
        params = {"times": len(found)}
    elif len(repeated) >= _LOOP_TIMES:
        start, end = repeated[0][1]
        template = gettext_noop('%(times)d phrases appear twice, such as "%(phrase)s": the text '
                                "goes in circles.")
        params = {"times": len(repeated)}
    elif near := _near_loop(text, zh):
        start, end, times = near
        template = (_SAID_AGAIN if times == 2 else gettext_noop(
            'The phrase "%(phrase)s" comes back %(times)d times in other words: the text goes '
            "in circles."))
        params = {"times": times}
    elif stutter := _stutter(text):
        start, end, unit = stutter
        return [_flag("looping", WARNING, _STUTTERS, start, end, phrase=unit,
                      times=(end - start) // len(unit))]
    else:
        return []
    return [_flag("looping", WARNING, template, start, end, phrase=text[start:end], **params)]



# A few characters said over and over with no clause break a loop can count ("100克/100克，" ×19
# in a tea description cut off at its token limit): the clause rules above see no clause long
# enough. Separators alone ("-----", "★★★★") are layout, not words.
_STUTTER_RE = re.compile(r"(?P<unit>\S.{2,23}?)(?P=unit){3,}", re.DOTALL)



_STUTTERS = gettext_noop('"%(phrase)s" is said %(times)d times in a row: the text goes in '
                         "circles.")



def _stutter(text: str) -> tuple[int, int, str] | None:
    for m in _STUTTER_RE.finditer(text):
        if re.search(r"\w", m.group("unit")):
            return m.start(), m.end(), m.group("unit")
    return None



# A clause said again in other words ("配方含植物油" / "配方含有植物油" / "含植物油配方"): the
# clauses' character pairs (Chinese) or words and word pairs (English) overlap by at least
# _NEAR_SIMILAR (Dice). The demo catalog's reference copy peaks at 0.33 (Chinese) and 0.60
# (English, "light enough to forget you are wearing it" / "do not forget you are wearing it"),
# so three such clauses, or two long ones alike by _NEAR_SIMILAR_LONG, are a loop, not style.
_NEAR_SIMILAR = 0.5



_NEAR_SIMILAR_LONG = 0.7



_NEAR_MIN = {True: 4, False: 4}  # Chinese characters, English words



_NEAR_MIN_LONG = {True: 12, False: 10}



# Each clause is compared with the few before it only: a loop comes back within a paragraph,
# and the work stays linear in the text's length.
_NEAR_WINDOW = 12



_SAID_AGAIN = gettext_noop('The phrase "%(phrase)s" comes back in other words: the text goes in '
                           "circles.")



def _clause_features(key: str, zh: bool) -> frozenset:
    if zh:
        chars = [ch for ch in key if _CJK_RE.match(ch) or ch.isalnum()]
        return frozenset(a + b for a, b in zip(chars, chars[1:], strict=False))
    words = key.split()
    return frozenset((*words, *zip(words, words[1:], strict=False)))


def _dice(a: frozenset, b: frozenset) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


def _near_loop(text: str, zh: bool) -> tuple[int, int, int] | None:
    """Where a clause comes back in other words: ``(start, end, times)`` of the clause that
    makes the loop (the third of three alike, or the second of two long ones alike); ``None``
    when none does. Alike clauses are grouped (each with the most alike of the few before it),
    so "A, A', A''" is one clause said three times even when A and A'' differ more."""
    clauses: list[tuple[int, int, str, int, frozenset]] = []
    group_of: list[int] = []
    sizes: dict[int, int] = {}
    long_pair = None
    for m in _CLAUSE_RE.finditer(text):
        key = _normalize_sentence(m.group(0))
        size = _clause_size(key, zh)
        if size < _NEAR_MIN[zh]:
            continue
        start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
        end = m.start() + len(m.group(0).rstrip())
        features = _clause_features(key, zh)
        best, best_score = None, 0.0
        for j in range(max(0, len(clauses) - _NEAR_WINDOW), len(clauses)):
            score = _dice(features, clauses[j][4])
            if score > best_score:
                best, best_score = j, score
        group = group_of[best] if best is not None and best_score >= _NEAR_SIMILAR \
            else len(clauses)
        clauses.append((start, end, key, size, features))
        group_of.append(group)
        sizes[group] = sizes.get(group, 0) + 1
        if sizes[group] >= _LOOP_TIMES:
            return start, end, sizes[group]
        if long_pair is None and best is not None and best_score >= _NEAR_SIMILAR_LONG \
                and min(size, clauses[best][3]) >= _NEAR_MIN_LONG[zh]:
            long_pair = start, end, 2
    return long_pair


# Copy of the product's own source text: the same word (Chinese: character) triples, in about
# the same amounts. Shorter source texts are left alone (a title-like sentence may well be the
# right copy).
_SOURCE_COPY_SIMILARITY = 0.9



_SOURCE_COPY_MIN_SHINGLES = 8



def _shingles(text: str) -> Counter[tuple[str, ...]]:
    normalized = unicodedata.normalize("NFKC", text).lower()
    tokens = re.findall(rf"[{_CJK}]|[^\W_{_CJK}]+", normalized)
    return Counter(zip(tokens, tokens[1:], tokens[2:], strict=False))



def source_similarity(text: str, source: str) -> float:
    """How much of ``text`` is ``source`` (0 to 1): the Dice coefficient of their word
    (Chinese: character) triples, counted with repeats; case, spacing and punctuation are
    ignored. Linear in the texts' lengths."""
    mine, theirs = _shingles(text), _shingles(source)
    total = sum(mine.values()) + sum(theirs.values())
    if not total:
        return 0.0
    return 2 * sum((mine & theirs).values()) / total



def _check_source_copy(text: str, facts: ProductFacts) -> list[Flag]:
    source = facts.source_text or ""
    if sum(_shingles(source).values()) < _SOURCE_COPY_MIN_SHINGLES:
        return []
    similarity = source_similarity(text, source)
    if similarity <= _SOURCE_COPY_SIMILARITY:
        return []
    return [_flag("source_copy", ERROR,
                  gettext_noop("The text is a copy of the product's source text (%(share)s the "
                               "same); write new copy from the facts."),
                  share=f"{similarity:.0%}")]

