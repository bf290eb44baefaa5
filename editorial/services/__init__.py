"""Writes. Views, commands, admin actions and Celery tasks all call these, so each workflow rule
lives here once: permission and validation first, then the write, side effects after commit.

One module per noun; this package re-exports their names, so callers import from
``editorial.services`` and need not know which module holds a rule. The refusals are in
``editorial.exceptions``."""

from ..exceptions import BlockingFlags, RevisionConflict, StaleRevision, WorkflowError
from .ab_tests import ab_assign, ab_test_request
from .api_tokens import api_token_authenticate, api_token_create, api_token_revoke
from .assignment import BulkResult, draft_assign, draft_bulk_assign, draft_claim, draft_unassign
from .catalog import UpsertItemError, UpsertResult, product_bulk_upsert
from .chunks import (
    ChunkClaim,
    ItemOutcome,
    generation_chunk_claim,
    generation_chunk_finish,
    generation_chunk_heartbeat,
    generation_job_finish_if_complete,
    generation_results_store,
)
from .finetune import (
    finetune_output_dir,
    finetune_run_data,
    finetune_run_fail,
    finetune_run_finish,
    finetune_run_phase,
    finetune_run_progress,
    finetune_run_request,
    finetune_run_retry,
    finetune_run_start,
)
from .generation_jobs import (
    draft_regenerate,
    draft_retry_generation,
    generation_job_cancel,
    generation_job_request,
)
from .model_versions import (
    model_version_default,
    model_version_make_default,
    model_version_register,
)
from .review import (
    draft_approve,
    draft_bulk_approve,
    draft_bulk_reject,
    draft_reject,
    draft_request_changes,
    draft_submit,
)
from .revisions import (
    candidate_choose,
    comment_add,
    presence_beat,
    presence_leave,
    revision_restore,
    revision_save,
)
from .sweeper import ResumeReport, generation_jobs_resume

__all__ = [
    "BlockingFlags",
    "BulkResult",
    "ChunkClaim",
    "ItemOutcome",
    "ResumeReport",
    "RevisionConflict",
    "StaleRevision",
    "UpsertItemError",
    "UpsertResult",
    "WorkflowError",
    "ab_assign",
    "ab_test_request",
    "api_token_authenticate",
    "api_token_create",
    "api_token_revoke",
    "candidate_choose",
    "comment_add",
    "draft_approve",
    "draft_assign",
    "draft_bulk_approve",
    "draft_bulk_assign",
    "draft_bulk_reject",
    "draft_claim",
    "draft_regenerate",
    "draft_reject",
    "draft_request_changes",
    "draft_retry_generation",
    "draft_submit",
    "draft_unassign",
    "finetune_output_dir",
    "finetune_run_data",
    "finetune_run_fail",
    "finetune_run_finish",
    "finetune_run_phase",
    "finetune_run_progress",
    "finetune_run_request",
    "finetune_run_retry",
    "finetune_run_start",
    "generation_chunk_claim",
    "generation_chunk_finish",
    "generation_chunk_heartbeat",
    "generation_job_cancel",
    "generation_job_finish_if_complete",
    "generation_job_request",
    "generation_jobs_resume",
    "generation_results_store",
    "model_version_default",
    "model_version_make_default",
    "model_version_register",
    "presence_beat",
    "presence_leave",
    "product_bulk_upsert",
    "revision_restore",
    "revision_save",
]
