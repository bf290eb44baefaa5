from django.urls import path

from .views import dashboard, drafts, jobs, products, queue, transfer

urlpatterns = [
    path("", dashboard.home, name="home"),
    path("products/", products.product_list, name="product_list"),
    path("products/<path:sku>/", products.product_detail, name="product_detail"),
    path("generate/", products.generate, name="generate"),
    path("jobs/", jobs.job_list, name="job_list"),
    path("jobs/<int:job_id>/", jobs.job_detail, name="job_detail"),
    path("jobs/<int:job_id>/cancel/", jobs.job_cancel, name="job_cancel"),
    path("drafts/", queue.draft_queue, name="draft_queue"),
    path("drafts/bulk/", queue.draft_queue_bulk, name="draft_queue_bulk"),
    path("drafts/shortcuts/", queue.shortcuts_help, name="shortcuts_help"),
    path("drafts/<int:draft_id>/", drafts.draft_detail, name="draft_detail"),
    path("drafts/<int:draft_id>/save/", drafts.draft_save, name="draft_save"),
    path("drafts/<int:draft_id>/check/", drafts.draft_check, name="draft_check"),
    path("drafts/<int:draft_id>/choose/", drafts.candidate_choose, name="candidate_choose"),
    path("drafts/<int:draft_id>/submit/", drafts.draft_submit, name="draft_submit"),
    path("drafts/<int:draft_id>/claim/", drafts.draft_claim, name="draft_claim"),
    path("drafts/<int:draft_id>/review/", drafts.draft_review, name="draft_review"),
    path("drafts/<int:draft_id>/jobs/", drafts.draft_jobs, name="draft_jobs"),
    path("drafts/<int:draft_id>/retry/", drafts.draft_retry, name="draft_retry"),
    path("drafts/<int:draft_id>/regenerate/", drafts.draft_regenerate,
         name="draft_regenerate"),
    path("drafts/<int:draft_id>/restore/", drafts.revision_restore, name="revision_restore"),
    path("drafts/<int:draft_id>/compare/", drafts.draft_compare, name="draft_compare"),
    path("drafts/<int:draft_id>/comments/", drafts.draft_comment, name="draft_comment"),
    path("drafts/<int:draft_id>/presence/", drafts.draft_presence, name="draft_presence"),
    path("import/", transfer.catalog_import, name="catalog_import"),
    path("export/", transfer.copy_export, name="copy_export"),
]
