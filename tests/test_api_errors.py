"""The API's one error mapping (``editorial.api.errors.exception_handler``): what a client reads
when a service refuses, whichever endpoint called it."""

from django.core.exceptions import PermissionDenied
from django.utils import translation

from editorial import services
from editorial.api.errors import exception_handler
from editorial.api.views import DraftApproveView, JobListView
from editorial.policies import require


def _answer(exc, view_class=DraftApproveView):
    return exception_handler(exc, {"view": view_class()})


def test_a_service_permission_refusal_is_403_with_the_services_reason_in_the_users_language():
    with translation.override("zh-hans"):
        try:
            require(False, translation.gettext("Only reviewers can review drafts."))
        except PermissionDenied as exc:
            response = _answer(exc)
    assert response.status_code == 403
    assert response.data["detail"] == "只有审核员可以审核草稿。"


def test_a_refusal_without_a_reason_keeps_drfs_own_403_text():
    response = _answer(PermissionDenied())
    assert response.status_code == 403 and response.data["detail"]


def test_a_workflow_refusal_is_409_invalid_state_with_the_message():
    response = _answer(services.WorkflowError("Nobody is assigned to this draft."))
    assert response.status_code == 409
    assert response.data == {"detail": "Nobody is assigned to this draft.",
                             "code": "invalid_state"}


def test_on_a_view_whose_refusals_are_about_the_input_a_refusal_is_400():
    response = _answer(services.WorkflowError("No products selected."), JobListView)
    assert response.status_code == 400
    assert response.data == {"non_field_errors": ["No products selected."]}


def test_anything_else_is_left_to_drf():
    assert _answer(ValueError("boom")) is None
