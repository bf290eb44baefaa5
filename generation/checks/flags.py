"""Flags and what they mean for a draft: severities, ranking, and whether copy is usable."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

ERROR = "error"



WARNING = "warning"



INFO = "info"



BLOCKING = ERROR



SEVERITY_WEIGHT = {ERROR: 100.0, WARNING: 10.0, INFO: 1.0}



T = TypeVar("T")



@dataclass(frozen=True)
class Flag:
    """One finding. ``start``/``end`` are character offsets into the checked text, or ``-1``
    for a flag about the text as a whole (a missing term, the language, coverage).

    ``message`` is English; ``template % params`` makes it, so a reader in another language
    gets ``gettext(template) % params`` (``editorial.diffing.flag_message``)."""

    code: str
    severity: str  # "error" | "warning" | "info"
    message: str
    start: int = -1
    end: int = -1
    # Derived from the finding, so equality and hashing leave them out.
    template: str = field(default="", compare=False)
    params: dict[str, str | int] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        """The flag as stored with a candidate (``Candidate.flags``) and sent by the API."""
        return {"code": self.code, "severity": self.severity, "message": self.message,
                "start": self.start, "end": self.end, "template": self.template,
                "params": dict(self.params)}

    @property
    def span(self) -> tuple[int, int]:
        return self.start, self.end

    @property
    def whole_text(self) -> bool:
        return self.start < 0



def rank_score(flags: Iterable[Flag]) -> float:
    """Higher is better: 0 for clean text, -100 per error, -10 per warning, -1 per info."""
    return -sum(SEVERITY_WEIGHT.get(flag.severity, 0.0) for flag in flags)



def rank(candidates: Iterable[tuple[T, Iterable[Flag]]]) -> list[T]:
    """The candidates, best first by ``rank_score`` of their flags; ties keep their order."""
    scored = [(rank_score(flags), i, item) for i, (item, flags) in enumerate(candidates)]
    scored.sort(key=lambda entry: (-entry[0], entry[1]))
    return [item for _, _, item in scored]



def has_blocking(flags: Iterable[Flag]) -> bool:
    return any(flag.severity == BLOCKING for flag in flags)



def is_usable(flags: Iterable[Flag | dict]) -> bool:
    """Whether copy with these flags is usable: worth giving an editor as a first draft.

    Usable means no ERROR flag, and the checks make an ERROR of each thing that makes a draft
    unusable, so usable copy is:

    - in the product's language (no ``wrong_language``: not mostly Latin letters for a
      Chinese product, not mostly Chinese for an English one);
    - without invented numbers (no ``ungrounded_number``: every number with a unit — "750 ml",
      "2-year", "50%", "12小时" — and every ratio is in the product data; bare numbers are not
      judged) and without brands or models the data does not name (``ungrounded_brand``,
      ``ungrounded_model``);
    - plain text: no Markdown (``markdown``: headings, ``**``, ``*``/``+`` list markers,
      links, rules, tables), no code (``code``: backticks, fences), no JSON or braces
      (``json``), no HTML (``html``), no web or e-mail address or phone number (``url``,
      ``email``, ``phone``);
    - the copy itself, not prompt residue (``prompt_leftover``: a preamble such as "Here is",
      "Sure!", a prompt label such as "Task:", "Title:", "Description:", "标题：" at the start
      of a line, "<product>", "In this email", chat tokens; ``instruction_echo``);
    - not a copy of the product's source text (``source_copy``: near-identical to it);
    - within the length limit (``too_long``: any overrun; the limits are the shop platform's
      field limits, which cut longer text);
    - free of every other error: banned terms, absolute claims, health claims
      (``health_claim``), a colour the product's data contradicts (``colour_mismatch``:
      "Sea Green" for a sea grey mug), empty text.

    - not noise (``garbled``), and free of facts of the example products its prompt showed
      (``example_fact``);
    - a title that names its product (``off_subject``) and does not rename it (``title_renamed``:
      "皇家茉莉花茶" for "横县茉莉花茶"): warnings, since an editor may title a product freely, but
      a first draft that does not is no start;
    - text that does not loop (``looping``: one phrase three times, three phrases twice, or
      a clause said again in other words three times, twice when it is long): a
      warning, since copy may repeat a phrase on purpose, but a draft that circles is no start;
    - English copy that does not contradict its product or itself (``contradiction``: "a knife
      without blades" for a knife whose data gives its blade is an error; "heats up quickly" then
      "takes longer to heat up" a warning that leaves the draft no start).

    Other warnings and notes (a required term missing, a mild superlative, an unknown material
    or part code, facts not mentioned) do not make copy unusable. ``flags`` may be ``Flag``s or
    their stored dicts (``Candidate.flags``)."""
    for flag in flags:
        severity = flag.get("severity") if isinstance(flag, dict) else flag.severity
        code = flag.get("code") if isinstance(flag, dict) else flag.code
        if severity == ERROR or code in NOT_USABLE_WARNINGS:
            return False
    return True



# Warnings that an editor may approve over, but that leave a first draft no start.
NOT_USABLE_WARNINGS = frozenset({"off_subject", "title_renamed", "looping", "contradiction"})



# A finding quoted in a message is cut to this many characters: a 40,000-character "address"
# must not become a 40,000-character message (the span still covers all of it).
_QUOTE_MAX = 80



def _quoted(params: dict[str, str | int]) -> dict[str, str | int]:
    return {key: value[: _QUOTE_MAX - 1] + "…"
            if isinstance(value, str) and len(value) > _QUOTE_MAX else value
            for key, value in params.items()}



def _flag(code: str, severity: str, template: str, start: int = -1, end: int = -1,
          **params: str | int) -> Flag:
    return Flag(code, severity, template % (quoted := _quoted(params)), start, end, template,
                quoted)

