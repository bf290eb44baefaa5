"""Reads. Views and API views ask here for what they show, so every list page has one place that
decides its joins (a bounded number of queries whatever the page size) and its filters.

By what the page shows: the catalog, jobs and model versions, the queue, one draft."""

from .catalog import (
    brand_list,
    catalog_import_list,
    category_list,
    content_kind_list,
    export_batch_recent_list,
    product_detail,
    product_draft_list,
    product_filtered,
    product_list,
)
from .drafts import (
    CANDIDATE_ORDER,
    ExampleSource,
    FirstDraft,
    ThreadEntry,
    candidate_example_sources,
    draft_blocking_flags,
    draft_candidate,
    draft_candidate_list,
    draft_char_limit,
    draft_comment_list,
    draft_decision_list,
    draft_detail,
    draft_first_draft,
    draft_presence_others,
    draft_revision_list,
    draft_text_checks,
    draft_text_max_chars,
    draft_thread,
    revision_origin_candidate,
)
from .jobs import (
    ab_test_recent_list,
    draft_job_list,
    draft_last_job,
    job_detail,
    job_draft_list,
    job_kind_labels,
    job_list,
    job_recent_list,
    model_version_list,
    model_version_ready_list,
)
from .queue import (
    QUEUE_DEFAULT_SORT,
    QUEUE_FLAG_SEVERITIES,
    StateCount,
    draft_bulk_list,
    draft_queue,
    draft_queue_filtered,
    draft_queue_rows,
    draft_queue_state_counts,
    draft_state_counts,
    queue_assignee_list,
)

__all__ = [
    "CANDIDATE_ORDER", "ExampleSource", "FirstDraft", "QUEUE_DEFAULT_SORT",
    "QUEUE_FLAG_SEVERITIES", "StateCount", "ThreadEntry", "ab_test_recent_list", "brand_list",
    "candidate_example_sources", "catalog_import_list", "category_list", "content_kind_list",
    "draft_blocking_flags", "draft_bulk_list", "draft_candidate",
    "draft_candidate_list", "draft_char_limit", "draft_comment_list", "draft_decision_list",
    "draft_detail", "draft_first_draft", "draft_job_list", "draft_last_job",
    "draft_presence_others", "draft_queue", "draft_queue_filtered", "draft_queue_rows",
    "draft_queue_state_counts", "draft_revision_list", "draft_state_counts", "draft_text_checks",
    "draft_text_max_chars", "draft_thread",
    "export_batch_recent_list", "job_detail", "job_draft_list", "job_kind_labels", "job_list",
    "job_recent_list", "model_version_list", "model_version_ready_list", "product_detail",
    "product_draft_list", "product_filtered", "product_list", "queue_assignee_list",
    "revision_origin_candidate",
]
