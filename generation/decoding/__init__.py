"""Grounded decoding: token-level rules that make bad copy impossible to generate.

``GroundedDecoding`` is a ``LogitsProcessor`` that masks, for each row of a batch, every token that
would break that row's ``RowRules`` (built per request by ``rules_for`` from the product facts,
the locale and the brand's banned terms):

* **Numbers are copied, never invented.** A number is a run of ASCII digits with inner ``.``/``,``
  separators (``350``, ``1.7``, ``2,200``; ``18/8`` is the two numbers ``18`` and ``8``). Every
  number in the output must be one of the facts' numbers (``numbers_from_facts``: each number as
  written, its canonical form as ``checks`` compares them, and thousands grouping for integers of
  four or more digits, so facts saying ``2200 W`` allow ``2200`` and ``2,200``). The row's trailing,
  still open number is tracked: a token may extend it only while it stays a prefix of an allowed
  number, a number that ends inside a token must be complete, and while the open number is not
  complete the row must go on with it (EOS is masked too). Without numbers in the facts no digit
  can be generated. A ``.`` or ``,`` after a number counts as punctuation when the number is
  complete. Other digits (full-width ``３``, Arabic-Indic …) are banned outright. Numbers spelt
  out in words (``three``, ``三百``) are not constrained.
* **Banned terms cannot be generated**: the brand's banned terms, plus China's advertising-law
  absolute terms (``checks._ZH_ABSOLUTE_TERMS``) for Chinese products or the error-level English
  overclaims (``EN_CLAIM_TERMS``) for English ones; a built-in term that occurs in the facts is
  left out (``checks`` does not report it either: "100% cotton"). Matching is over the bytes the
  tokens produce, ASCII case-insensitive, with any run of whitespace matching one space, so a term
  is caught with or without a leading space, in any case and split over several tokens (it is
  stopped at the token that would complete it). Word-like terms (``checks._is_wordlike``) respect
  word boundaries like ``checks``: banning "cure" bans neither "secure" nor a " cured" token; but
  when a term would end exactly at the end of a token the next character is not known yet and the
  token is banned (so "cure" followed by a separate "d" token is not possible either). The
  exemptions of ``checks._ZH_EXEMPT_AFTER`` hold: "最" may be generated only when the next
  character makes it 最近/最后/最终/最初 (the row must then go on with one of them), "第一" only as
  第一次/第一步.
* **No markup** (``block_markup``): no ``#`` (headings, hashtags), backticks (code), ``**``,
  ``http``, ``://``, ``www.``, ``@`` (e-mail), ``<`` ``>`` (HTML), ``{`` ``}`` and their full-width
  forms (``MARKUP_TERMS``), and no special tokens other than EOS. Ordinary punctuation (``*``,
  ``|``, ``-``, ``/``, quotes, brackets) stays.
* **Stops**: once a row's generated text contains one of its ``stop_strings``, the row can only
  emit EOS. ``cut_at_stop`` cuts the finished text at the first stop string.
* **Facts are nudged in** (``fact_values``, descriptions and bullets): until the text mentions an
  attribute value (as ``checks.coverage`` counts it), the tokens that start it get
  ``FACT_NUDGE`` added to their scores, before the masks, so a banned token stays banned.

``token_budget`` turns a character limit into a max-new-tokens budget for a tokenizer.

Per tokenizer, ``DecodingVocabulary`` (cached by ``vocabulary_for``) precomputes the bytes each
token produces, a lower-cased byte index sorted for prefix look-ups, and the tokens that bear
digits; per set of rules it caches which tokens contain a banned term and which tokens continue a
partial term or number. Per step and row the processor updates the row's state from the last
token (a short byte tail, the open number, whether a stop string was seen) and looks up a few
cached id arrays; the scores see one ``index_fill_`` and one ``amax`` (measured on CPU: about
25 us per row and step for SmolLM2's 49k vocabulary, 90 us for Gemma 3's 262k).

Limits: a row cut by ``max_new_tokens`` can end inside a number ("35" of "350") or on a bare
"最"; a number from the facts can still be put with the wrong unit ("350 grams" for "350ml");
the rules see only the generated text (and ``RowRules.context``), not the prompt.
"""

from .budget import chars_per_token, token_budget
from .processor import FACT_NUDGE, GroundedDecoding
from .rules import (
    EN_CLAIM_TERMS,
    EN_HEALTH_TERMS,
    MARKUP_TERMS,
    RowRules,
    builtin_banned_terms,
    cut_at_stop,
    numbers_from_facts,
    rules_for,
)
from .vocabulary import COPY_SCRIPTS, DecodingVocabulary, vocabulary_for

__all__ = [
    "EN_HEALTH_TERMS",
    "FACT_NUDGE",
    "COPY_SCRIPTS",
    "DecodingVocabulary",
    "EN_CLAIM_TERMS",
    "GroundedDecoding",
    "MARKUP_TERMS",
    "RowRules",
    "builtin_banned_terms",
    "chars_per_token",
    "cut_at_stop",
    "numbers_from_facts",
    "rules_for",
    "token_budget",
    "vocabulary_for",
]
