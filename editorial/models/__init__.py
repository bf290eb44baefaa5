"""The desk's tables, by what they hold: the catalog, generation runs, drafts and their history,
and what leaves the desk (exports, the API's tokens and copy feed)."""

from .catalog import SHIPPED_KIND_LABELS, Brand, CatalogImport, ContentKind, Locale, Product
from .delivery import ApiToken, CopyFeedCounter, CopyFeedEntry, ExportBatch
from .drafts import (
    AuditEvent,
    Candidate,
    Draft,
    DraftComment,
    DraftPresence,
    DraftStateTally,
    ReviewDecision,
    Revision,
    VersionCandidateCount,
    VersionReviewTally,
)
from .generation import (
    ABTest,
    FineTuneRun,
    GenerationJob,
    JobChunk,
    JobItem,
    ModelVersion,
    WorkerRun,
)

__all__ = [
    "SHIPPED_KIND_LABELS", "ABTest", "ApiToken", "AuditEvent", "Brand", "Candidate",
    "CatalogImport", "ContentKind", "CopyFeedCounter", "CopyFeedEntry", "Draft", "DraftComment",
    "DraftPresence", "DraftStateTally", "ExportBatch", "FineTuneRun", "GenerationJob",
    "JobChunk", "JobItem", "Locale", "ModelVersion", "Product", "ReviewDecision", "Revision",
    "VersionCandidateCount", "VersionReviewTally", "WorkerRun",
]
