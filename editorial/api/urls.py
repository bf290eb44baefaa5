from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import views

urlpatterns = [
    path("v1/products/", views.ProductListView.as_view(), name="api_product_list"),
    path("v1/products/<path:sku>/", views.ProductDetailView.as_view(), name="api_product_detail"),
    path("v1/jobs/", views.JobListView.as_view(), name="api_job_list"),
    path("v1/jobs/<int:job_id>/", views.JobDetailView.as_view(), name="api_job_detail"),
    path("v1/jobs/<int:job_id>/cancel/", views.JobCancelView.as_view(), name="api_job_cancel"),
    path("v1/drafts/", views.DraftListView.as_view(), name="api_draft_list"),
    path("v1/drafts/<int:draft_id>/", views.DraftDetailView.as_view(), name="api_draft_detail"),
    path("v1/drafts/<int:draft_id>/revisions/", views.DraftRevisionCreateView.as_view(),
         name="api_draft_revisions"),
    path("v1/drafts/<int:draft_id>/approve/", views.DraftApproveView.as_view(),
         name="api_draft_approve"),
    path("v1/copy/", views.CopyFeedView.as_view(), name="api_copy_feed"),
    path("v1/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    path("docs/redoc/", SpectacularRedocView.as_view(url_name="api_schema"), name="api_redoc"),
    re_path(r"^", views.NotFoundView.as_view()),
]
