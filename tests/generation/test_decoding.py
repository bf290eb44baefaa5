"""Grounded decoding: the rules on real tokenizers (SmolLM2, Gemma 3 where installed), through
``model.generate`` on the tiny random-weight model (whose junk is full of digits and symbols,
pushed further by a bias towards the banned tokens), and once on the real SmolLM2 model."""

import re

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList

from generation.checks import ERROR
from generation.checks.claims import (
    _EN_HEALTH_CLAIMS,
    _EN_HEALTH_RE,
    _EN_OVERCLAIM_RES,
    _ZH_ABSOLUTE_RE,
)
from generation.checks.matching import _term_pattern
from generation.decoding import (
    EN_CLAIM_TERMS,
    EN_HEALTH_TERMS,
    GroundedDecoding,
    RowRules,
    cut_at_stop,
    numbers_from_facts,
    rules_for,
    token_budget,
    vocabulary_for,
)
from generation.engine import GenerationRequest, SeededSampler, row_seed
from generation.params import GenerationParams
from generation.registry import GEMMA_MODEL_NAME, SMOLLM2_MODEL_NAME, default_model_dir

NEG_INF = float("-inf")
NUMBER_RE = re.compile(r"[0-9]+(?:[.,][0-9]+)*")
BOTTLE = "Steel water bottle, 350ml, keeps drinks cold, powder-coated."
MARKUP = ("#", "`", "**", "http", "://", "www.", "@", "<", ">", "{", "}")


# -- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def smol(gen_tiny_model):
    """The SmolLM2 tokenizer (the tiny model carries it) and its decoding vocabulary."""
    tokenizer = AutoTokenizer.from_pretrained(gen_tiny_model)
    return tokenizer, vocabulary_for(tokenizer)


@pytest.fixture(scope="module")
def gemma():
    path = default_model_dir() / GEMMA_MODEL_NAME
    if not (path / "tokenizer.json").is_file():
        pytest.skip(f"the Gemma 3 tokenizer is not installed ({path} is missing)")
    tokenizer = AutoTokenizer.from_pretrained(path)
    return tokenizer, vocabulary_for(tokenizer)


@pytest.fixture(params=["smol", "gemma"])
def tok(request):
    return request.getfixturevalue(request.param)


def ids_of(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


def one(tokenizer, text):
    ids = ids_of(tokenizer, text)
    assert len(ids) == 1, f"{text!r} is {tokenizer.convert_ids_to_tokens(ids)}"
    return ids[0]


def allowed_after(pair, rules, generated, *, eos=None):
    """The bool mask of tokens allowed after ``generated`` (text or ids) for one row."""
    tokenizer, vocab = pair
    ids = generated if isinstance(generated, list) else ids_of(tokenizer, generated)
    eos = tokenizer.eos_token_id if eos is None else eos
    input_ids = torch.tensor([[eos, eos, *ids]])
    processor = GroundedDecoding(vocab, [rules], prompt_width=2, eos_token_ids=[eos])
    scores = processor(input_ids, torch.zeros(1, len(tokenizer)))
    return scores[0] > NEG_INF


def can_follow(pair, rules, generated, piece):
    """Whether ``piece`` (one token's text) may come after ``generated``."""
    return bool(allowed_after(pair, rules, generated)[one(pair[0], piece)])


def can_write(pair, rules, generated, text):
    """Whether each token of ``text`` in turn may come after ``generated``."""
    written = ids_of(pair[0], generated)
    for piece in ids_of(pair[0], text):
        if not allowed_after(pair, rules, written)[piece]:
            return False
        written = [*written, piece]
    return True


def en_rules(facts=BOTTLE, **kwargs):
    return rules_for(facts_text=facts, locale="en", **kwargs)


def zh_rules(facts="玻璃茶壶 600毫升，高硼硅玻璃", **kwargs):
    return rules_for(facts_text=facts, locale="zh-hans", **kwargs)


def numbers_ok(text, allowed, *, finished):
    """Every number in ``text`` is allowed (a row cut by max_new_tokens may end in a prefix)."""
    for m in NUMBER_RE.finditer(text):
        if m.group() in allowed:
            continue
        if not finished and m.end() == len(text) and any(a.startswith(m.group())
                                                          for a in allowed):
            continue
        return False
    return True


class FakeTokenizer:
    """A tokenizer with multi-digit tokens (decoded token by token: the generic path)."""

    name_or_path = ""

    def __init__(self, pieces):
        self.pieces = ["<eos>", *pieces]
        self.all_special_ids = [0]
        self.added_tokens_decoder = {}
        self.eos_token_id = 0

    def __len__(self):
        return len(self.pieces)

    def convert_ids_to_tokens(self, ids):
        return [self.pieces[i] for i in ids]

    def decode(self, ids, **kwargs):
        return "".join(self.pieces[i] for i in ids if i)

    def __call__(self, text, add_special_tokens=False):
        # Greedy longest match, enough for the texts these tests use.
        ids, rest = [], text
        while rest:
            best = max((i for i, p in enumerate(self.pieces) if i and rest.startswith(p)),
                       key=lambda i: len(self.pieces[i]))
            ids.append(best)
            rest = rest[len(self.pieces[best]):]
        return {"input_ids": ids}


# -- the vocabulary -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "The 350ml bottle holds 2,200 ml, 1.7 L — 18/8 steel!\n\nNext:\t“quoted” café",
    "这款玻璃茶壶容量600毫升，最近很受欢迎。第一次使用前请清洗。",
    " cure secure guaranteed #1 100% <b>bold</b> ３５０ ½ 😀",
])
def test_token_bytes_add_up_to_the_tokenizers_own_decoding(tok, text):
    tokenizer, vocab = tok
    ids = ids_of(tokenizer, text)
    assert b"".join(vocab.token_bytes[i] for i in ids).decode() == tokenizer.decode(ids)


def test_the_vocabulary_is_built_once_per_tokenizer(smol, gen_tiny_model):
    tokenizer, vocab = smol
    assert vocabulary_for(tokenizer) is vocab
    assert vocabulary_for(AutoTokenizer.from_pretrained(gen_tiny_model)) is vocab


# -- numbers ------------------------------------------------------------------------------------


def test_numbers_from_facts_keeps_each_number_as_written_and_canonical():
    numbers = numbers_from_facts("2,200 W; 1.7 L; 18/8 steel; 1.50 kg; 0.5 mm; ６００毫升; "
                                 "3000 mAh")
    assert {"2,200", "2200", "1.7", "18", "8", "1.50", "1.5", "0.5", "600", "3000",
            "3,000"} <= numbers
    assert "7" not in numbers and "17" not in numbers and ".5" not in numbers
    assert numbers_from_facts("no numbers here") == frozenset()


def test_a_digit_may_only_start_or_extend_a_number_from_the_facts(smol):
    rules = en_rules()  # 350 is the only number
    assert can_follow(smol, rules, "Holds ", "3")
    assert not can_follow(smol, rules, "Holds ", "5")
    assert can_follow(smol, rules, "Holds 3", "5")
    assert not can_follow(smol, rules, "Holds 3", "0")
    assert can_follow(smol, rules, "Holds 35", "0")
    assert not can_follow(smol, rules, "Holds 350", "0")  # 3500 is not a fact


def test_an_unfinished_number_must_be_completed_before_anything_else(smol):
    tokenizer, _ = smol
    rules = en_rules()
    allowed = allowed_after(smol, rules, "Holds 35")
    assert allowed.nonzero().flatten().tolist() == [one(tokenizer, "0")]
    assert not allowed[tokenizer.eos_token_id]
    after = allowed_after(smol, rules, "Holds 350")
    assert after[one(tokenizer, "ml")] and after[one(tokenizer, " ml")]
    assert after[tokenizer.eos_token_id]


def test_a_separator_after_a_complete_number_is_punctuation(smol):
    rules = en_rules("Kettle 1.7 L, 2200 W")
    assert can_follow(smol, rules, "It holds 1", ".")
    assert not can_follow(smol, rules, "It holds 1", " L")  # "1" is not a fact, "1.7" is
    assert not can_follow(smol, rules, "It holds 1.", " L")
    assert can_follow(smol, rules, "It holds 1.", "7")
    assert can_follow(smol, rules, "It holds 1.7", ".")  # the end of the sentence
    assert can_follow(smol, rules, "It holds 1.7.", " It")
    assert not can_follow(smol, rules, "It holds 1.7.", "5")
    assert can_follow(smol, rules, "Draws 2", ",")  # 2,200 is how 2200 is also written
    assert can_follow(smol, rules, "Draws 2,", "2")
    assert not can_follow(smol, rules, "Draws 2,", " and")


def test_without_numbers_in_the_facts_no_digit_can_be_generated(tok):
    tokenizer, vocab = tok
    rules = en_rules("A steel bottle that keeps drinks cold")
    allowed = allowed_after(tok, rules, "It holds ")
    assert len(vocab.digit_ids) >= 10
    assert not allowed[torch.from_numpy(vocab.digit_ids)].any()
    digit_free = [i for i in range(len(tokenizer)) if bool(allowed[i])]
    assert not any(re.search(r"\d", tokenizer.decode([i])) for i in digit_free)
    # Full-width digits are no way round it, not even byte by byte.
    pieces = ids_of(tokenizer, "３")
    assert not all(
        allowed_after(tok, rules, [*ids_of(tokenizer, "It holds "), *pieces[:k]])[pieces[k]]
        for k in range(len(pieces))
    )


def test_multi_digit_tokens_must_fit_an_allowed_number():
    tokenizer = FakeTokenizer(["350", "35", "3", "5", "0", "50", "3500", "360", "350ml", "ml",
                               " ", "1.7", "1", ".", "7", "x", "0ml", "5.", "50 "])
    pair = (tokenizer, vocabulary_for(tokenizer))
    rules = en_rules("350 ml, 1.7 L")
    start = allowed_after(pair, rules, "x ")
    ok = {p for i, p in enumerate(tokenizer.pieces) if start[i]}
    assert {"350", "35", "3", "350ml", "1.7", "1", "ml", " ", "x"} <= ok
    assert not ok & {"3500", "360", "50", "5", "0", "0ml", "50 "}
    after = allowed_after(pair, rules, "x 35")
    assert {p for i, p in enumerate(tokenizer.pieces) if after[i]} == {"0", "0ml"}
    after = allowed_after(pair, rules, "x 1")
    assert {p for i, p in enumerate(tokenizer.pieces) if after[i]} == {"."}  # on to "1.7"


def test_numbers_are_free_when_grounding_is_off(smol):
    rules = en_rules(ground_numbers=False)
    assert rules.allowed_numbers == frozenset()
    assert can_follow(smol, rules, "Holds ", "5")
    assert can_follow(smol, rules, "Holds 3", " ml")


# -- banned terms -------------------------------------------------------------------------------


def test_rules_ban_the_brands_terms_and_the_locales_absolute_terms():
    rules = en_rules(brand_banned=["cheap", " eco-friendly "])
    assert rules.banned_terms[:2] == ("cheap", "eco-friendly")
    assert {"guaranteed", "miracle", "cure", "100%", "risk-free"} <= set(rules.banned_terms)
    zh = zh_rules(brand_banned=["便宜"])
    assert {"便宜", "最", "第一", "国家级", "顶级", "最佳"} <= set(zh.banned_terms)
    assert "guaranteed" not in zh.banned_terms
    assert zh.locale == "zh-hans" and isinstance(zh, RowRules)


def test_a_built_in_term_the_facts_use_themselves_is_not_banned():
    assert "100%" not in en_rules("Shirt, 100% cotton").banned_terms
    assert "cure" not in en_rules("Wood glue, full cure in 24 hours").banned_terms
    assert "cure" in en_rules("A secure lid").banned_terms
    assert "顶级" not in zh_rules("顶级茶叶").banned_terms
    # 最近 in the facts is not 最 as an absolute term.
    assert "最" in zh_rules("最近上市的茶壶").banned_terms


def test_en_claim_terms_are_the_error_level_overclaims_of_checks():
    errors = [(pattern, label) for pattern, label, severity in _EN_OVERCLAIM_RES
              if severity == ERROR]
    for term in EN_CLAIM_TERMS:
        # Decoding also bans the typographic apostrophe ("world’s best") that checks miss.
        assert any(pattern.search(term.replace("’", "'")) for pattern, _ in errors), term
    for pattern, label in errors:
        assert any(pattern.search(term) for term in EN_CLAIM_TERMS), label


def test_health_claims_are_banned_in_both_languages_unless_the_facts_make_them():
    for term in EN_HEALTH_TERMS:
        assert _EN_HEALTH_RE.fullmatch(term), term
    for pattern in _EN_HEALTH_CLAIMS:
        assert any(re.fullmatch(pattern, term, re.IGNORECASE) for term in EN_HEALTH_TERMS), pattern
    assert "detox" in en_rules().banned_terms and "排毒" in zh_rules().banned_terms
    assert "排毒" not in zh_rules("排毒养颜茶 100克").banned_terms
    assert "therapeutic" not in en_rules("Therapeutic-grade lavender oil").banned_terms


@pytest.mark.parametrize("text", [
    " cheap", "Cheap", " CHEAP", " eco-friendly", " Eco-Friendly", " guaranteed",
    " Guaranteed", " risk free", " risk-free", " clinically proven", " number one",
    " miracle", " cures", " world's best", " best ever", "便宜",
])
def test_a_banned_term_is_stopped_at_its_last_piece_in_any_tokenization(tok, text):
    tokenizer, _ = tok
    rules = en_rules(brand_banned=["cheap", "eco-friendly", "便宜"])
    lead = "Bottle ("
    # Every split of the term into what is already written and what comes next.
    for cut in range(len(text)):
        pieces = ids_of(tokenizer, text[cut:])
        written = ids_of(tokenizer, lead + text[:cut])
        if b"".join(tok[1].token_bytes[i] for i in written).decode() != lead + text[:cut]:
            continue  # the lead and the start of the term merged into other tokens
        for k, piece in enumerate(pieces):
            allowed = bool(allowed_after(tok, rules, written + pieces[:k])[piece])
            if k == len(pieces) - 1:
                assert not allowed, (text[:cut], tokenizer.convert_ids_to_tokens(pieces))


def test_word_boundaries_keep_words_that_contain_a_banned_term(smol):
    rules = en_rules(brand_banned=["cheap"])
    assert can_follow(smol, rules, "A", " secure")
    assert can_write(smol, rules, "It is se", "cure")
    assert can_follow(smol, rules, "Salt", " cured")  # "cure" ends inside the token
    assert not can_follow(smol, rules, "It will", " cure")
    assert not can_write(smol, rules, "(", "cure")
    assert can_write(smol, rules, "sec", "ure")
    assert can_follow(smol, rules, "Not che", "apest")  # checks do not flag "cheapest"
    assert not can_follow(smol, rules, "Not che", "ap")
    assert not can_write(smol, rules, "Not che", "ap.")


def test_common_chinese_words_with_absolute_characters_stay_possible(tok):
    tokenizer, _ = tok
    rules = zh_rules()
    for word in ("最近", "最后", "第一次"):
        written = ids_of(tokenizer, "这款茶壶")
        for piece in ids_of(tokenizer, word):
            assert allowed_after(tok, rules, written)[piece], (word, written)
            written = [*written, piece]
    for claim in ("最好", "最佳", "第一名", "顶级", "国家级"):
        written = ids_of(tokenizer, "这款茶壶")
        pieces = ids_of(tokenizer, claim)
        verdicts = []
        for piece in pieces:
            verdicts.append(bool(allowed_after(tok, rules, written)[piece]))
            written = [*written, piece]
        assert not all(verdicts), claim
    # After a bare 最 only 近/后/终/初 may follow: not 好, not the end of the text.
    written = ids_of(tokenizer, "这款茶壶最")
    allowed = allowed_after(tok, rules, written)
    assert not allowed[tokenizer.eos_token_id]
    assert not allowed[ids_of(tokenizer, "好")[0]]
    assert allowed[ids_of(tokenizer, "后")[0]]


def test_markup_cannot_be_generated(tok):
    tokenizer, vocab = tok
    rules = en_rules()
    start = allowed_after(tok, rules, "Nice bottle.")
    for mark in MARKUP:
        for text in (mark, " " + mark):
            ids = ids_of(tokenizer, text)
            if len(ids) == 1:
                assert not start[ids[0]], text
    assert all(not start[i] for i in vocab.special_ids if i != tokenizer.eos_token_id)
    for piece in (".", ",", "!", "?", "-", " -", "(", ")", "'", '"', ":", ";", "/", "*", "%"):
        ids = ids_of(tokenizer, piece)
        assert len(ids) != 1 or start[ids[0]], piece
    # Split over tokens: a second "*", or "tp" after "ht".
    assert not allowed_after(tok, rules, "Nice *")[ids_of(tokenizer, "*")[0]]
    written = [*ids_of(tokenizer, "see "), *ids_of(tokenizer, "ht")]
    tp = ids_of(tokenizer, "tp")
    if len(tp) == 1:
        assert not allowed_after(tok, rules, written)[tp[0]]


def test_markup_is_allowed_when_not_blocked(smol):
    rules = en_rules(block_markup=False)
    assert can_follow(smol, rules, "Nice bottle.", " #")
    assert can_follow(smol, rules, "Nice bottle.", " <")


# -- stops --------------------------------------------------------------------------------------


def test_a_row_that_has_generated_a_stop_string_can_only_end(smol):
    tokenizer, _ = smol
    rules = en_rules(stop_strings=("\n---", "\n\n"))
    assert allowed_after(smol, rules, "Nice bottle.\n").sum() > 1000
    for text in ("Nice bottle.\n\n", "Nice bottle.\n---", "Nice bottle.\n---\nMore"):
        allowed = allowed_after(smol, rules, text)
        assert allowed.nonzero().flatten().tolist() == [tokenizer.eos_token_id], text


def test_cut_at_stop_cuts_at_the_first_stop_string():
    assert cut_at_stop("Copy.\n---\nNext\n\nmore", ("\n\n", "\n---")) == "Copy."
    assert cut_at_stop("Copy.", ("\n---",)) == "Copy."
    assert cut_at_stop("Copy.\n\n", ()) == "Copy.\n\n"


def test_a_separator_cut_off_by_the_token_budget_leaves_no_half_behind():
    stops = ("\n---", "---\n")
    assert cut_at_stop("密封、避光、防潮。\n--", stops) == "密封、避光、防潮。"
    assert cut_at_stop("Copy.\n-", stops) == "Copy."
    assert cut_at_stop("Oak, ash -", stops) == "Oak, ash -"  # one dash is not a separator yet
    assert cut_at_stop("A well-made pot.", stops) == "A well-made pot."
    assert cut_at_stop("a##b", ("", "##")) == "a"


# -- the processor ------------------------------------------------------------------------------


def test_each_row_of_a_batch_follows_its_own_rules_and_a_row_without_rules_is_untouched(smol):
    tokenizer, vocab = smol
    eos = tokenizer.eos_token_id
    rows = [en_rules(), None, en_rules("Kettle 2200 W")]
    generated = [ids_of(tokenizer, t) for t in ("Holds 3", "Takes 7", "Draws 2")]
    prompts = [[eos], [eos, eos, eos], [eos, eos]]  # left-padded to one width
    input_ids = torch.tensor([[eos] * (3 - len(p)) + p + g
                              for p, g in zip(prompts, generated, strict=True)])
    processor = GroundedDecoding(vocab, rows, prompt_width=3, eos_token_ids=[eos])
    raw = torch.randn(3, len(tokenizer))
    scores = processor(input_ids, raw.clone())
    assert torch.equal(scores[1], raw[1])
    assert scores[0, one(tokenizer, "5")] > NEG_INF and scores[0, one(tokenizer, "0")] == NEG_INF
    assert scores[2, one(tokenizer, "2")] > NEG_INF and scores[2, one(tokenizer, ",")] > NEG_INF
    assert scores[2, one(tokenizer, "5")] == NEG_INF and scores[2, one(tokenizer, "0")] == NEG_INF


def test_a_fresh_processor_mid_way_agrees_with_one_that_followed_every_step(smol):
    tokenizer, vocab = smol
    eos = tokenizer.eos_token_id
    rules = [en_rules(brand_banned=["cheap"], stop_strings=("\n\n",)), zh_rules()]
    texts = ["The bottle holds 350 ml and is che", "这款茶壶最近很受欢迎，容量600毫"]
    encoded = [ids_of(tokenizer, t) for t in texts]
    steps = min(len(e) for e in encoded)
    following = GroundedDecoding(vocab, rules, prompt_width=1, eos_token_ids=[eos])
    for step in range(steps + 1):
        input_ids = torch.tensor([[eos, *e[:step]] for e in encoded])
        followed = following(input_ids, torch.zeros(2, len(tokenizer)))
        fresh = GroundedDecoding(vocab, rules, prompt_width=1, eos_token_ids=[eos])
        assert torch.equal(fresh(input_ids, torch.zeros(2, len(tokenizer))), followed), step
    # Called twice at one step (or restarted) it does not advance its state twice.
    assert torch.equal(following(input_ids, torch.zeros(2, len(tokenizer))), followed)


def test_a_row_left_without_choices_gets_eos(smol):
    tokenizer, vocab = smol
    eos = tokenizer.eos_token_id
    processor = GroundedDecoding(vocab, [en_rules("no numbers")], prompt_width=1,
                                 eos_token_ids=[eos])
    scores = torch.full((1, len(tokenizer)), NEG_INF)
    scores[0, one(tokenizer, "7")] = 5.0  # the only candidate is a banned digit
    out = processor(torch.tensor([[eos]]), scores)
    assert out[0].argmax().item() == eos and out[0, eos] == 0.0


def test_a_number_open_at_the_end_of_the_lead_in_continues_in_the_copy(smol):
    rules = en_rules("Kettle 1.7 L", context="The Fjell kettle holds 1.")
    assert can_follow(smol, rules, "", "7")
    assert not can_follow(smol, rules, "", " L")


# -- end to end with generate -------------------------------------------------------------------


class Bias(LogitsProcessor):
    """Pushes the given tokens up, to show that the rules hold even when the model wants them."""

    def __init__(self, ids, amount):
        self.ids = torch.tensor(sorted(set(ids)))
        self.amount = amount

    def __call__(self, input_ids, scores):
        scores[:, self.ids] += self.amount
        return scores


@pytest.fixture(scope="module")
def tiny(gen_tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(gen_tiny_model)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(gen_tiny_model).eval()
    # One thread, as for the engine fixtures: a tiny model gains nothing from more, and extra
    # OpenMP threads spinning against other processes slow these tests down several times.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tokenizer, model, vocabulary_for(tokenizer)
    torch.set_num_threads(threads)


def generate(tiny, rules, *, rows=16, seed=0, bias_ids=(), bias=0.0, grounded=True,
             max_new_tokens=48):
    tokenizer, model, vocab = tiny
    prompts = [f"Write copy for product {i}:" if i % 2 else "Describe:" for i in range(rows)]
    encoded = tokenizer(prompts, return_tensors="pt", padding=True)
    width = encoded["input_ids"].shape[1]
    processors = LogitsProcessorList()
    if bias_ids:
        processors.append(Bias(bias_ids, bias))
    if grounded:
        processors.append(GroundedDecoding(vocab, [rules] * rows, prompt_width=width,
                                           eos_token_ids=[tokenizer.eos_token_id]))
    processors.append(SeededSampler([row_seed(seed, i) for i in range(rows)], temperature=1.0,
                                    top_k=0, top_p=1.0))
    with torch.inference_mode():
        output = model.generate(**encoded, do_sample=False, max_new_tokens=max_new_tokens,
                                logits_processor=processors,
                                pad_token_id=tokenizer.pad_token_id,
                                eos_token_id=tokenizer.eos_token_id)
    return [decoded(tokenizer, row) for row in output[:, width:].tolist()]


def decoded(tokenizer, row):
    """``(text, finished, ids)`` of one generated row: up to EOS, if it came."""
    finished = tokenizer.eos_token_id in row
    if finished:
        row = row[:row.index(tokenizer.eos_token_id)]
    return tokenizer.decode(row), finished, row


def bias_towards(tokenizer, vocab, texts=()):
    ids = set(vocab.digit_ids.tolist())
    for text in texts:
        for variant in (text, " " + text, text.upper(), " " + text.capitalize()):
            ids.update(ids_of(tokenizer, variant))
    return ids


def test_random_model_writes_no_number_but_the_facts_over_many_seeds(tiny):
    tokenizer, _, vocab = tiny
    rules = en_rules()
    ids = bias_towards(tokenizer, vocab)
    control = [t for seed in range(2) for t, _, _ in
               generate(tiny, rules, seed=seed, bias_ids=ids, bias=8.0, grounded=False)]
    assert len({n for t in control for n in NUMBER_RE.findall(t)}) > 10  # the bias works
    seen = set()
    for seed in range(8):
        for text, finished, _ in generate(tiny, rules, seed=seed, bias_ids=ids, bias=8.0):
            assert numbers_ok(text, {"350"}, finished=finished), text
            seen.update(NUMBER_RE.findall(text))
    assert "350" in seen  # the facts' number does get written


def test_random_model_never_writes_banned_terms_or_markup_even_when_pushed(tiny):
    tokenizer, _, vocab = tiny
    brand = ["cheap", "eco-friendly"]
    rules = en_rules(brand_banned=brand)
    pushed = ["cheap", "eco", "friendly", "guaranteed", "guarantee", "cure", "miracle", "#",
              "http", "<", "**", "@", "`", "{", "100", "%", "risk", "free", "best", "ever"]
    ids = bias_towards(tokenizer, vocab, pushed)
    patterns = [_term_pattern(term) for term in rules.banned_terms]
    patterns += [pattern for pattern, _, severity in _EN_OVERCLAIM_RES if severity == ERROR]
    control = [t for t, _, _ in generate(tiny, rules, bias_ids=ids, bias=10.0, grounded=False)]
    assert sum(bool(p.search(t)) for t in control for p in patterns) > 10
    assert any(m in t for t in control for m in MARKUP)
    for seed in range(8):
        for text, _, _ in generate(tiny, rules, seed=seed, bias_ids=ids, bias=10.0):
            assert not [p.pattern for p in patterns if p.search(text)], text
            assert not [m for m in MARKUP if m in text.lower()], text


def test_random_model_never_writes_chinese_absolute_terms_even_when_pushed(tiny):
    tokenizer, _, vocab = tiny
    rules = zh_rules(brand_banned=["便宜"])
    ids = bias_towards(tokenizer, vocab, ["最", "第一", "顶级", "最好", "国家级", "便宜",
                                          "最近", "第一次", "%"])
    for seed in range(6):
        for text, finished, _ in generate(tiny, rules, seed=seed, bias_ids=ids, bias=9.0):
            found = [m.group() for m in _ZH_ABSOLUTE_RE.finditer(text)]
            if not finished and text.rstrip("\ufffd").endswith(("最", "第一")):
                found = found[:-1]  # cut by max_new_tokens before its 近/后/次 could come
            assert not found and "便宜" not in text, text
            assert numbers_ok(text, rules.allowed_numbers, finished=finished), text


def test_stop_strings_end_rows_in_generate(tiny):
    tokenizer, _, vocab = tiny
    rules = en_rules(stop_strings=(",",))
    stopped = 0
    for text, finished, ids in generate(tiny, rules, bias_ids={one(tokenizer, ",")}, bias=10.0):
        if "," in text:
            stopped += 1
            # The token that wrote the stop string was the last one: EOS came right after.
            assert finished and "," not in tokenizer.decode(ids[:-1]), text
            assert "," not in cut_at_stop(text, rules.stop_strings)
    assert stopped >= 8


def test_the_engine_applies_a_requests_rules(tiny_engine):
    messages = [{"role": "system", "content": "You write product copy for an online shop."},
                {"role": "user", "content": f"Describe: {BOTTLE}"}]
    rules = en_rules(brand_banned=["cheap"])
    requests = [GenerationRequest(messages=messages, candidates=4, seed=s, rules=rules)
                for s in range(4)]
    params = GenerationParams(max_new_tokens=24, temperature=1.0, top_k=0, top_p=1.0)
    for result in tiny_engine.generate(requests, params):
        for candidate in result.candidates:
            assert numbers_ok(candidate.text, {"350"}, finished=candidate.finished)
            assert not [m for m in MARKUP if m in candidate.text]


# -- token budget -------------------------------------------------------------------------------


def test_token_budget_follows_the_tokenizers_characters_per_token(smol):
    tokenizer, _ = smol
    en, zh = token_budget(400, tokenizer, "en"), token_budget(400, tokenizer, "zh-hans")
    assert 100 < en < 200  # about 3.8 characters per token for English
    assert zh > 2 * en  # SmolLM2 spends several tokens on one Chinese character
    assert token_budget(10, tokenizer, "en") == 16  # the floor
    assert token_budget(100_000, tokenizer, "en") == 1024  # the ceiling
    assert token_budget(300, tokenizer, "en") <= token_budget(301, tokenizer, "en")
    with pytest.raises(ValueError):
        token_budget(0, tokenizer, "en")


def test_gemma_needs_fewer_tokens_for_chinese_than_smollm2(smol, gemma):
    assert token_budget(300, gemma[0], "zh-hans") < token_budget(300, smol[0], "zh-hans")


# -- the real model -----------------------------------------------------------------------------


@pytest.mark.slow
def test_smollm2_writes_only_the_facts_numbers():
    path = default_model_dir() / SMOLLM2_MODEL_NAME
    if not (path / "config.json").is_file():
        pytest.skip(f"the real SmolLM2 model is not installed ({path} is missing; make model)")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    messages = [
        {"role": "system", "content": "You write short product descriptions for a shop."},
        # Asking for facts it does not have tempts the model to invent numbers (unconstrained,
        # this seed writes "3.5 oz", "500g" and a date).
        {"role": "user", "content": "Describe this product in two sentences and give its "
                                    f"weight, price and capacity: {BOTTLE}"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    encoded = tokenizer([text] * 4, return_tensors="pt", add_special_tokens=False)
    width = encoded["input_ids"].shape[1]
    rules = en_rules()
    processors = LogitsProcessorList([
        GroundedDecoding(vocabulary_for(tokenizer), [rules] * 4, prompt_width=width,
                         eos_token_ids=[tokenizer.eos_token_id]),
        SeededSampler([row_seed(3, i) for i in range(4)], temperature=0.9, top_k=50,
                      top_p=0.95),
    ])
    with torch.inference_mode():
        output = model.generate(**encoded, do_sample=False, max_new_tokens=60,
                                logits_processor=processors,
                                pad_token_id=tokenizer.eos_token_id,
                                eos_token_id=tokenizer.eos_token_id)
    rows = [decoded(tokenizer, row) for row in output[:, width:].tolist()]
    for text, finished, _ in rows:
        assert numbers_ok(text, {"350"}, finished=finished), text
        assert not [m for m in MARKUP if m in text], text
    assert any("350" in text for text, _, _ in rows)  # the fact is there to be copied


# -- nudging towards the facts ---------------------------------------------------------------------

def nudged_after(pair, rules, generated):
    """The score each token gets after ``generated`` from zeros (the nudge, or -inf)."""
    tokenizer, vocab = pair
    eos = tokenizer.eos_token_id
    ids = ids_of(tokenizer, generated)
    processor = GroundedDecoding(vocab, [rules], prompt_width=2, eos_token_ids=[eos])
    return processor(torch.tensor([[eos, eos, *ids]]), torch.zeros(1, len(tokenizer)))[0]


def test_tokens_that_start_an_unmentioned_fact_are_nudged_until_it_is_mentioned(smol):
    from generation.decoding import FACT_NUDGE

    tokenizer, _ = smol
    rules = en_rules(fact_values=("stainless steel", "sage"))
    scores = nudged_after(smol, rules, "The bottle is")
    stainless = one(tokenizer, " stainless")
    assert scores[stainless] == FACT_NUDGE
    assert scores[one(tokenizer, " sage")] == FACT_NUDGE
    assert scores[one(tokenizer, " the")] == 0  # not the start of a fact
    assert scores[one(tokenizer, " st")] == 0  # too short to say which word it starts
    after = nudged_after(smol, rules, "The bottle is stainless steel, in")
    assert after[stainless] == 0 and after[one(tokenizer, " sage")] == FACT_NUDGE


def test_the_nudge_never_lifts_a_masked_token(smol):
    tokenizer, _ = smol
    rules = en_rules(facts="A cheap steel bottle", brand_banned=["cheap"],
                     fact_values=("cheap steel",))
    scores = nudged_after(smol, rules, "A")
    assert scores[one(tokenizer, " cheap")] == NEG_INF


def test_chinese_facts_are_nudged_without_a_space(gemma):
    from generation.decoding import FACT_NUDGE

    tokenizer, _ = gemma
    rules = zh_rules(fact_values=("高硼硅玻璃",))
    scores = nudged_after(gemma, rules, "这款茶壶采用")
    first = ids_of(tokenizer, "高硼硅玻璃")[0]
    assert scores[first] == FACT_NUDGE
    assert nudged_after(gemma, rules, "这款茶壶采用高硼硅玻璃，")[first] == 0


def test_descriptions_get_the_facts_to_nudge_and_titles_do_not():
    from generation.drafting import DraftSpec, Recipe, draft_requests
    from generation.prompts import KindSpec, ProductFacts

    facts = ProductFacts(sku="B-1", title="Bottle", attributes={"material": "steel", "x": " "})
    kinds = [KindSpec(code=code, label=code, instructions="x") for code in ("description",
                                                                            "title")]
    specs = [DraftSpec(facts=facts, kind=kind) for kind in kinds]
    (_, description), (_, title) = draft_requests(specs, recipe=Recipe(prompt_format="completion"),
                                                  sampled=2)
    assert description.rules.fact_values == ("steel",)
    assert title.rules.fact_values == ()
    (_, plain), _ = draft_requests(specs, recipe=Recipe(prompt_format="completion",
                                                        nudge_facts=False), sampled=2)
    assert plain.rules.fact_values == ()
