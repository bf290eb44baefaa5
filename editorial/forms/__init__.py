"""Forms parse and type what the browser sent; the rules themselves live in services and in
generation.params, whose errors the views attach to these forms' fields.
"""

from .drafts import (
    CandidateChooseForm,
    CommentForm,
    ReviewForm,
    RevisionCompareForm,
    RevisionForm,
    RevisionRestoreForm,
)
from .generation import DecodingParamsForm, GenerateForm, ProductFilterForm, RegenerateForm
from .messages import TOO_LONG, text_too_long_message, upload_too_large_message
from .queue import QueueActionForm, QueueFilterForm
from .training import FineTuneForm, TrainingDataForm
from .transfer import CatalogImportChoiceField, CopyExportForm, ExportForm, ImportForm

__all__ = [
    "CandidateChooseForm",
    "CatalogImportChoiceField",
    "CommentForm",
    "CopyExportForm",
    "DecodingParamsForm",
    "ExportForm",
    "FineTuneForm",
    "GenerateForm",
    "ImportForm",
    "ProductFilterForm",
    "QueueActionForm",
    "QueueFilterForm",
    "RegenerateForm",
    "ReviewForm",
    "RevisionCompareForm",
    "RevisionForm",
    "RevisionRestoreForm",
    "TOO_LONG",
    "TrainingDataForm",
    "text_too_long_message",
    "upload_too_large_message",
]
