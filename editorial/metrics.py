"""How much editing each model version's drafts still need.

Two layers:

* pure functions over plain values — tokenizing, edit distance, confidence intervals,
  ``summarize`` and ``compare`` — that need no database, so the learning benchmark and the A/B
  report can reuse them on anything;
* ``model_version_metrics()``, which has the database count and aggregate what those need in a
  fixed number of queries (six, whatever the number of drafts) and hands the totals to the
  pure layer.

Definitions, per model version:

* **drafts generated**: drafts with at least one candidate from the version.
* **starting candidate** of a draft: the candidate its line of revisions started from — walk
  ``Revision.parent`` from the approved revision (for a rejected draft: the current one) to the
  first revision that names a ``candidate`` (the model's first revision names the best candidate;
  choosing another candidate in the editor starts a new line naming that one). A draft counts for
  the model version of its starting candidate; a draft whose text started from no candidate
  counts for none.
* **reviewed**: drafts that are approved, exported or rejected. **Acceptance rate**: the share of
  reviewed drafts approved with the starting candidate's text unchanged (ignoring whitespace at
  the ends); **rejection rate**: the share rejected; the rest were approved after edits.
* **edit distance** of an approved draft: Levenshtein distance between the starting candidate and
  the approved text over tokens — words for English, characters for Chinese — divided by the
  longer token count: 0 unchanged, 1 rewritten. Past ``EDIT_DISTANCE_SAMPLE`` approved drafts
  the mean is taken over a reproducible random sample of them.
* **time to approval**: ``approved_at`` minus the starting candidate's ``created_at``; median.
* **flag rate**: the share of the version's candidates with a blocking or warning flag.

Intervals are 95%: Wilson score intervals for rates, Student's t for the mean edit distance.
"""

from __future__ import annotations

import math
import random
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from generation.text import HAN_CLASS, KANA_CLASS

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from .models import Draft, ModelVersion

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile

# Student's t 97.5% quantiles for 1..30 degrees of freedom; beyond, a Cornish-Fisher expansion.
_T975 = (
    12.706204736, 4.302652730, 3.182446305, 2.776445105, 2.570581836, 2.446911851, 2.364624252,
    2.306004135, 2.262157163, 2.228138852, 2.200985160, 2.178812830, 2.160368656, 2.144786688,
    2.131449546, 2.119905299, 2.109815578, 2.100922040, 2.093024054, 2.085963447, 2.079613845,
    2.073873068, 2.068657610, 2.063898562, 2.059538553, 2.055529439, 2.051830516, 2.048407142,
    2.045229642, 2.042272456,
)

# The mean edit distance of a version with more approved drafts than this is estimated from a
# reproducible random sample of this many (its interval says how precise that is): ~0.3 ms a
# draft keeps the dashboard well under a second per version whatever the catalog size, and
# 1,000 drafts pin a mean edit distance down to about ±0.01.
EDIT_DISTANCE_SAMPLE = 1000


# --- Edit distance --------------------------------------------------------------------------------

# One token per CJK character (ideographs, kana, CJK punctuation, full-width forms), one per
# word (a run of letters/digits), one per other non-space character (punctuation).
_CJK = r"\u3001-\u303f" + KANA_CLASS + HAN_CLASS + r"\uff00-\uffef"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]")


def tokens(text: str) -> list[str]:
    """Words for English, single characters for Chinese (mixed text: both), punctuation marks
    on their own; whitespace separates and is not a token."""
    return _TOKEN.findall(text or "")


def levenshtein(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Edit distance (insertions, deletions, substitutions) between two token sequences.

    Myers/Hyyrö's bit-parallel algorithm on Python integers: one pass over ``a`` with a handful
    of big-integer operations per token, so two 1,000-token texts take about a millisecond in
    pure Python (the textbook table would take a second)."""
    # Common ends cost nothing and are most of an edited text.
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    a, b = a[start:end_a], b[start:end_b]
    if len(a) < len(b):
        a, b = b, a
    m = len(b)
    if m == 0:
        return len(a)
    match: dict[Any, int] = {}
    for i, token in enumerate(b):
        match[token] = match.get(token, 0) | (1 << i)
    # Column deltas of the DP table as bit vectors: pv/mv mark +1/-1 steps down the column.
    # Python's integers are unbounded and ~ makes them negative, so pv is masked to m bits;
    # carries only run upwards, so bits above m never disturb the ones below.
    mask = (1 << m) - 1
    top = 1 << (m - 1)
    pv, mv, score = mask, 0, m
    get = match.get
    for token in a:
        eq = get(token, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | ~(xh | pv)
        mh = pv & xh
        if ph & top:
            score += 1
        elif mh & top:
            score -= 1
        ph = (ph << 1) | 1
        pv = ((mh << 1) | ~(xv | ph)) & mask
        mv = ph & xv
    return score


def normalized_edit_distance(before: str, after: str) -> float:
    """Token-level Levenshtein distance divided by the longer text's token count (0..1)."""
    a, b = tokens(before), tokens(after)
    longest = max(len(a), len(b))
    return levenshtein(a, b) / longest if longest else 0.0


# --- Intervals ------------------------------------------------------------------------------------


def t_quantile_975(df: float) -> float:
    """Student's t 97.5% quantile (two-sided 95%), for ``df >= 1``."""
    if df < 1:
        raise ValueError("degrees of freedom must be at least 1")
    if df <= len(_T975):
        return _T975[int(df) - 1]
    z = Z95
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def wilson_interval(successes: int, total: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval for a proportion; None without observations."""
    if total <= 0:
        return None
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == total else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class Rate:
    """``hits`` out of ``total`` with its 95% Wilson interval (all None when total is 0)."""

    hits: int
    total: int

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.hits, self.total)

    @property
    def low(self) -> float | None:
        return self.interval[0] if self.total else None

    @property
    def high(self) -> float | None:
        return self.interval[1] if self.total else None


@dataclass(frozen=True)
class Mean:
    """The mean of ``n`` values in 0..1 with a 95% interval (Student's t; None below n=2)."""

    n: int
    value: float | None
    sd: float | None
    low: float | None
    high: float | None

    @classmethod
    def of(cls, values: Sequence[float], *, bounds: tuple[float, float] = (0.0, 1.0)) -> Mean:
        n = len(values)
        if n == 0:
            return cls(n=0, value=None, sd=None, low=None, high=None)
        mean = math.fsum(values) / n
        if n == 1:
            return cls(n=1, value=mean, sd=None, low=None, high=None)
        sd = statistics.stdev(values)
        half = t_quantile_975(n - 1) * sd / math.sqrt(n)
        return cls(n=n, value=mean, sd=sd, low=max(bounds[0], mean - half),
                   high=min(bounds[1], mean + half))


# --- Per model version ----------------------------------------------------------------------------

APPROVED = "approved"
REJECTED = "rejected"


@dataclass(frozen=True)
class DraftOutcome:
    """A reviewed draft, reduced to what the metrics need."""

    model_version_id: int
    outcome: str  # APPROVED or REJECTED
    start_text: str  # the starting candidate's text
    final_text: str = ""  # the approved text ("" when rejected)
    generated_at: datetime | None = None  # when the starting candidate was stored
    approved_at: datetime | None = None
    draft_id: int = 0  # orders the edit-distance sample

    @property
    def unchanged(self) -> bool:
        return self.outcome == APPROVED and self.start_text.strip() == self.final_text.strip()


@dataclass(frozen=True)
class VersionMetrics:
    model_version_id: int
    name: str
    drafts_generated: int
    candidates: int
    approved: int
    rejected: int
    acceptance: Rate  # approved unchanged / reviewed
    rejection: Rate  # rejected / reviewed
    flag_rate: Rate  # flagged candidates / candidates
    edit_distance: Mean  # over approved drafts (a sample of EDIT_DISTANCE_SAMPLE at most)
    median_seconds_to_approval: float | None
    model_version: Any = field(default=None, compare=False, repr=False)

    @property
    def reviewed(self) -> int:
        return self.approved + self.rejected

    @property
    def approved_unchanged(self) -> int:
        return self.acceptance.hits

    @property
    def approved_edited(self) -> int:
        return self.approved - self.acceptance.hits


def summarize(
    *,
    model_version_id: int,
    name: str,
    outcomes: Iterable[DraftOutcome],
    drafts_generated: int = 0,
    candidates: int = 0,
    flagged_candidates: int = 0,
    model_version: Any = None,
    edit_distance_sample: int = EDIT_DISTANCE_SAMPLE,
) -> VersionMetrics:
    """One model version's figures from its reviewed drafts and candidate counts."""
    outcomes = list(outcomes)
    approved = [o for o in outcomes if o.outcome == APPROVED]
    rejected = sum(1 for o in outcomes if o.outcome == REJECTED)
    reviewed = len(approved) + rejected
    unchanged = sum(1 for o in approved if o.unchanged)
    measured = approved
    if len(approved) > edit_distance_sample:
        ordered = sorted(approved, key=lambda o: (o.draft_id, o.start_text, o.final_text))
        measured = random.Random(model_version_id).sample(ordered, edit_distance_sample)
    distances = [
        0.0 if o.unchanged else normalized_edit_distance(o.start_text, o.final_text)
        for o in measured
    ]
    waits = [
        (o.approved_at - o.generated_at).total_seconds()
        for o in approved
        if o.approved_at is not None and o.generated_at is not None
    ]
    return VersionMetrics(
        model_version_id=model_version_id,
        name=name,
        drafts_generated=drafts_generated,
        candidates=candidates,
        approved=len(approved),
        rejected=rejected,
        acceptance=Rate(unchanged, reviewed),
        rejection=Rate(rejected, reviewed),
        flag_rate=Rate(flagged_candidates, candidates),
        edit_distance=Mean.of(distances),
        median_seconds_to_approval=statistics.median(waits) if waits else None,
        model_version=model_version,
    )


# --- A/B comparison -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """``b - a`` for one figure with its 95% interval. ``significant`` is None when either side
    has too little data to say anything, else whether the interval excludes 0."""

    figure: str
    a: float | None
    b: float | None
    diff: float | None
    low: float | None
    high: float | None
    higher_is_better: bool

    @property
    def significant(self) -> bool | None:
        if self.low is None or self.high is None:
            return None
        return self.low > 0 or self.high < 0

    @property
    def better(self) -> str | None:
        """"a" or "b" when the difference is significant, else None."""
        if not self.significant:
            return None
        b_higher = self.low > 0
        return "b" if b_higher == self.higher_is_better else "a"


def rate_difference(figure: str, a: Rate, b: Rate, *, higher_is_better: bool) -> Difference:
    """Newcombe's hybrid score interval (built from the two Wilson intervals) for b - a."""
    if not a.total or not b.total:
        return Difference(figure, a.value, b.value, None, None, None, higher_is_better)
    pa, pb = a.value, b.value
    la, ua = a.interval
    lb, ub = b.interval
    diff = pb - pa
    low = diff - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2)
    high = diff + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2)
    return Difference(figure, pa, pb, diff, low, high, higher_is_better)


def mean_difference(figure: str, a: Mean, b: Mean, *, higher_is_better: bool) -> Difference:
    """Welch's interval for the difference of two means, b - a."""
    if a.n < 2 or b.n < 2:
        return Difference(figure, a.value, b.value, None, None, None, higher_is_better)
    diff = b.value - a.value
    va, vb = a.sd**2 / a.n, b.sd**2 / b.n
    se = math.sqrt(va + vb)
    if se == 0:
        return Difference(figure, a.value, b.value, diff, diff, diff, higher_is_better)
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    half = t_quantile_975(max(1.0, df)) * se
    return Difference(figure, a.value, b.value, diff, diff - half, diff + half, higher_is_better)


@dataclass(frozen=True)
class Comparison:
    a: VersionMetrics
    b: VersionMetrics
    acceptance: Difference
    edit_distance: Difference
    rejection: Difference
    flag_rate: Difference

    @property
    def differences(self) -> list[Difference]:
        return [self.acceptance, self.edit_distance, self.rejection, self.flag_rate]

    @property
    def significant(self) -> bool:
        """Whether acceptance or edit distance differ significantly (the two that judge a
        model version)."""
        return bool(self.acceptance.significant or self.edit_distance.significant)


def compare(a: VersionMetrics, b: VersionMetrics) -> Comparison:
    """Compare two model versions (e.g. the arms of an A/B job): each ``Difference`` is b - a
    with a 95% interval and says whether it is significant yet."""
    return Comparison(
        a=a,
        b=b,
        acceptance=rate_difference("acceptance", a.acceptance, b.acceptance,
                                   higher_is_better=True),
        edit_distance=mean_difference("edit_distance", a.edit_distance, b.edit_distance,
                                      higher_is_better=False),
        rejection=rate_difference("rejection", a.rejection, b.rejection,
                                  higher_is_better=False),
        flag_rate=rate_difference("flag_rate", a.flag_rate, b.flag_rate,
                                  higher_is_better=False),
    )


# --- Reading the database -------------------------------------------------------------------------


def starting_candidate_id(
    revision_id: int | None, revisions: dict[int, tuple[int | None, int | None]]
) -> int | None:
    """Walk ``parent`` links from ``revision_id`` to the first revision naming a candidate.
    ``revisions`` maps a revision id to ``(parent_id, candidate_id)``."""
    seen: set[int] = set()
    while revision_id is not None and revision_id not in seen:
        seen.add(revision_id)
        parent_id, candidate_id = revisions.get(revision_id, (None, None))
        if candidate_id is not None:
            return candidate_id
        revision_id = parent_id
    return None


def revision_origin_distances(revision_ids) -> dict[int, float]:
    """The normalised edit distance from each revision's origin candidate to its text, computed
    for the revisions that have none stored yet and stored (revisions never change)."""
    from .models import Revision

    found = {}
    rows = Revision.objects.filter(pk__in=list(revision_ids), origin_candidate__isnull=False)
    for revision in rows.order_by().only("pk", "text", "origin_candidate__text").select_related(
            "origin_candidate"):
        revision.origin_distance = normalized_edit_distance(
            revision.origin_candidate.text, revision.text)
        found[revision.pk] = revision.origin_distance
    Revision.objects.bulk_update(
        [Revision(pk=pk, origin_distance=value) for pk, value in found.items()],
        ["origin_distance"], batch_size=500)
    return found


def _kept_review_tallies(version_ids: list[int]) -> dict[int, dict]:
    """The same figures for every draft, summed from ``VersionReviewTally``, with the number of
    its rows and the highest id per version (what the cache keys on)."""
    from django.db.models import Count, Max, Sum

    from . import tallies
    from .models import VersionReviewTally

    rows = (VersionReviewTally.objects.order_by().filter(model_version__in=version_ids)
            .values("model_version")
            .annotate(n=Sum("approved"), unchanged=Sum("unchanged"), timed=Sum("timed"),
                      rejected=Sum("rejected"), rows=Count("*"), last=Max("pk")))
    found = {row["model_version"]: row for row in rows}
    if sum(row["rows"] for row in found.values()) > tallies.FOLD_AT:
        tallies.fold(VersionReviewTally, "model_version_id",
                     ["approved", "unchanged", "timed", "rejected"])
    return found


def _review_samples(
    reviewed: QuerySet[Draft], tallies: dict[int, dict], edit_distance_sample: int,
) -> tuple[dict[int, list], dict[int, float | None]]:
    """Per version of ``tallies``: the sampled edit distances and the median seconds to
    approval, from ``reviewed`` (the drafts counted)."""
    from django.db.models import DurationField, ExpressionWrapper, F, Window
    from django.db.models.functions import RowNumber

    from .models import Draft

    state = Draft.State
    approved = reviewed.filter(review_version__in=list(tallies),
                               state__in=[state.APPROVED, state.EXPORTED])

    # The edit distance sample, drawn as ``summarize`` draws it from the approved drafts in id
    # order: which positions it takes depends only on how many there are, so only the drafts
    # at those positions are read, with their stored distances.
    positions: dict[int, list[int]] = {}
    for version_id, tally in tallies.items():
        every = range(1, tally["n"] + 1)
        positions[version_id] = (
            random.Random(version_id).sample(every, edit_distance_sample)
            if tally["n"] > edit_distance_sample else list(every))
    wanted = {p for taken in positions.values() for p in taken}
    at: dict[tuple[int, int], int] = {}
    if wanted:
        # In id order from the draft_review_order index; no join before the positions are
        # kept (joining revisions here read all 90,000 approved drafts' revisions).
        for version_id, position, pk in (
                approved.annotate(position=Window(RowNumber(), partition_by=[F("review_version")],
                                                  order_by=F("pk").asc()))
                .filter(position__in=sorted(wanted))
                .values_list("review_version", "position", "pk")):
            at[version_id, position] = pk
    sampled = {version_id: [at[version_id, p] for p in taken if (version_id, p) in at]
               for version_id, taken in positions.items()}
    stored = {
        pk: (revision_id, distance)
        for pk, revision_id, distance in Draft.objects.order_by().filter(
            pk__in=[pk for pks in sampled.values() for pk in pks]).values_list(
            "pk", "approved_revision_id", "approved_revision__origin_distance")
    }
    missing = {rev for rev, distance in stored.values() if distance is None}
    computed = revision_origin_distances(missing) if missing else {}

    # Medians of the time to approval: the middle one or two of each version's waits, read
    # in order from the draft_review_waits index (PostgreSQL) at their positions.
    wait = ExpressionWrapper(F("approved_at") - F("review_started_at"),
                             output_field=DurationField())
    waits: dict[int, list[float]] = {pk: [] for pk in tallies}
    for version_id, tally in tallies.items():
        size = tally["timed"]
        if not size:
            continue
        first, last = (size + 1) // 2, size // 2 + 1
        middle = (approved.filter(review_version=version_id, approved_at__isnull=False)
                  .order_by(wait.asc()).values_list(wait, flat=True)[first - 1:last])
        waits[version_id] = [seconds.total_seconds() for seconds in middle]
    distances = {version_id: [computed.get(stored[pk][0], stored[pk][1])
                              for pk in pks if pk in stored]
                 for version_id, pks in sampled.items()}
    medians = {version_id: statistics.median(found) if found else None
               for version_id, found in waits.items()}
    return distances, medians


# A version's sample and medians cost reads of its approved drafts (about 60 ms for 50,000),
# yet they change only when a statement writes one of its reviewed drafts, and each such
# statement adds a row for the version to ``VersionReviewTally``: the number of the version's
# rows and the highest id among them say whether what the cache keeps is still the figures
# (the count too, because a transaction can commit a row below the highest id already seen).
# A review recomputes its version only. The expiry is a backstop, not the rule.
REVIEW_FIGURES_SECONDS = 600


def _cached_review_figures(reviewed: QuerySet[Draft], version_ids: list[int],
                           edit_distance_sample: int):
    from django.core.cache import cache
    from django.db import connections

    tallies = _kept_review_tallies(version_ids)
    database = connections[reviewed.db].settings_dict["NAME"]
    keys = {version_id: (f"copydesk:review-figures:{database}:{version_id}:{tally['rows']}:"
                         f"{tally['last']}:{edit_distance_sample}")
            for version_id, tally in tallies.items()}
    kept = cache.get_many(list(keys.values()))
    stale = {version_id: tally for version_id, tally in tallies.items()
             if keys[version_id] not in kept}
    distances, medians = {}, {}
    if stale:
        distances, medians = _review_samples(reviewed, stale, edit_distance_sample)
        cache.set_many({keys[version_id]: (distances[version_id], medians[version_id])
                        for version_id in stale}, REVIEW_FIGURES_SECONDS)
    for version_id in tallies.keys() - stale.keys():
        distances[version_id], medians[version_id] = kept[keys[version_id]]
    return tallies, distances, medians


def model_version_metrics(
    model_versions: Iterable[ModelVersion] | QuerySet[ModelVersion] | None = None,
    *,
    drafts: QuerySet[Draft] | None = None,
    edit_distance_sample: int = EDIT_DISTANCE_SAMPLE,
) -> list[VersionMetrics]:
    """Figures for ``model_versions`` (default: every version with candidates), newest first,
    counting only ``drafts`` when given (e.g. the drafts of one A/B job or one brand).

    Five queries and one per version whatever the number of drafts, reading what drafts and
    revisions keep (``Draft.review_*``, ``Revision.origin_distance``) instead of walking their
    history: versions, candidate counts, the tallies per version, the edit distance sample,
    its stored distances (those not stored yet cost one more read and one write), and each
    version's median. The same figures as ``summarize`` gives from every reviewed
    draft. Over all drafts, the tallies are summed from ``VersionReviewTally`` and each
    version's sample and median are kept in the cache until one of its reviewed drafts is
    written (``_cached_review_figures``): three queries when none was."""
    from django.db.models import Count, Exists, OuterRef, Q

    from .models import Candidate, Draft, ModelVersion, VersionCandidateCount

    if model_versions is None:
        versions = list(
            ModelVersion.objects.filter(
                Exists(Candidate.objects.filter(model_version=OuterRef("pk")))
            ).order_by("-created_at", "-pk")
        )
    else:
        versions = list(model_versions)
    if not versions:
        return []
    version_ids = [v.pk for v in versions]

    candidates = Candidate.objects.filter(model_version_id__in=version_ids)
    reviewed = Draft.objects.order_by()
    if drafts is not None:
        draft_ids = drafts.order_by().values("pk")
        candidates = candidates.filter(draft_id__in=draft_ids)
        reviewed = reviewed.filter(pk__in=draft_ids)

    if drafts is None:
        # Kept by triggers as candidates are written (VersionCandidateCount): counting them
        # read every candidate's index entry, 150 ms at 570,000.
        counts = {
            row.model_version_id: {"n": row.candidates, "drafts": row.drafts,
                                   "flagged": row.flagged}
            for row in VersionCandidateCount.objects.filter(model_version__in=version_ids)
        }
    else:
        # From the (model_version, flagged, draft) index alone: no candidate row is read.
        counts = {
            row["model_version_id"]: row
            for row in candidates.order_by()
            .values("model_version_id")
            .annotate(
                n=Count("draft_id"),
                drafts=Count("draft_id", distinct=True),
                flagged=Count("draft_id", filter=Q(flagged=True)),
            )
        }

    if drafts is None:
        tallies, distances, medians = _cached_review_figures(reviewed, version_ids,
                                                             edit_distance_sample)
    else:
        from .tallies import scanned_review_tallies

        tallies = scanned_review_tallies(reviewed, version_ids)
        distances, medians = _review_samples(reviewed, tallies, edit_distance_sample)
    result = []
    for version in versions:
        count = counts.get(version.pk, {})
        tally = tallies.get(version.pk, {})
        n_approved, n_rejected = tally.get("n", 0), tally.get("rejected", 0)
        result.append(VersionMetrics(
            model_version_id=version.pk,
            name=version.name,
            drafts_generated=count.get("drafts", 0),
            candidates=count.get("n", 0),
            approved=n_approved,
            rejected=n_rejected,
            acceptance=Rate(tally.get("unchanged", 0), n_approved + n_rejected),
            rejection=Rate(n_rejected, n_approved + n_rejected),
            flag_rate=Rate(count.get("flagged", 0), count.get("n", 0)),
            edit_distance=Mean.of([d for d in distances.get(version.pk, []) if d is not None]),
            median_seconds_to_approval=medians.get(version.pk),
            model_version=version,
        ))
    return result


def ab_test_arms(test) -> tuple[VersionMetrics, VersionMetrics]:
    """Each arm of an A/B test measured on the drafts of its own job only."""
    from .models import Draft

    arms = []
    for arm, version in (("a", test.model_a), ("b", test.model_b)):
        drafts = Draft.objects.filter(job_items__job__ab_test=test, job_items__job__ab_arm=arm)
        arms.append(model_version_metrics([version], drafts=drafts)[0])
    return arms[0], arms[1]
