"""The draft state machine is one table (``editorial.workflow``): the services, the admin and
the pages all follow it, so a state the table refuses is refused everywhere, in the user's
language."""

import pytest
from django.utils import translation

from editorial import policies, services, workflow
from editorial.models import Draft
from tests.factories import DraftFactory, UserFactory, draft_with_text

State = Draft.State
pytestmark = pytest.mark.django_db


def in_state(state: str) -> Draft:
    """A draft with text in ``state`` (an approved or exported one with its approved text)."""
    draft = draft_with_text()
    pinned = draft.current_revision_id if state in {State.APPROVED, State.EXPORTED} else None
    Draft.objects.filter(pk=draft.pk).update(state=state, approved_revision_id=pinned)
    draft.refresh_from_db()
    return draft


def test_every_action_names_a_real_permission_and_real_states():
    for name, transition in workflow.TRANSITIONS.items():
        assert transition.sources <= workflow.ALL_STATES, name
        assert set(transition.moves) <= transition.sources, name
        assert set(transition.moves.values()) <= workflow.ALL_STATES, name
        if transition.permission:
            assert callable(getattr(policies, transition.permission)), name


def test_a_submit_the_table_refuses_is_refused_in_the_users_language():
    editor = UserFactory(roles=["Editor"])
    draft = in_state(State.APPROVED)
    with translation.override("zh-hans"), pytest.raises(services.WorkflowError) as refused:
        services.draft_submit(draft=draft, user=editor)
    assert str(refused.value) == "状态为“已批准”的草稿不能提交。"
    draft.refresh_from_db()
    assert draft.state == State.APPROVED
    assert not workflow.allows("submit", State.APPROVED)


@pytest.mark.parametrize("state", list(State.values))
def test_the_page_offers_only_what_the_services_accept(state):
    """For each state: an action the page shows is one the table allows; the editor appears
    only where the draft is not waiting on generation or review."""
    editor = UserFactory(roles=["Editor", "Reviewer"])
    draft = in_state(state)
    actions = policies.draft_actions(editor, draft)
    for name, offered in actions.items():
        if offered:
            assert workflow.allows(name, state), (name, state)
    assert actions["edit"] == (state in Draft.EDITABLE)
    assert actions["approve"] == (state == State.IN_REVIEW)
    assert actions["retry"] == (state == State.FAILED)
    assert actions["submit"] == (state in {State.READY, State.IN_EDIT, State.CHANGES_REQUESTED})


def test_a_user_without_a_role_is_offered_nothing():
    draft = DraftFactory(state=State.IN_REVIEW)
    assert not any(policies.draft_actions(UserFactory(roles=[]), draft).values())
