"""Property tests (hypothesis): the diff and the flag marks never lose or invent text, and no
sequence of workflow actions reaches a state the data model forbids."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from editorial import services
from editorial.diffing import diff_new_text, diff_old_text, mark_flags, text_diff, tokenize
from editorial.models import Draft, ReviewDecision
from tests.factories import UserFactory, draft_with_text

# Chinese, Latin, emoji, quotes, commas, newlines and other whitespace, in any mix.
# (Multi-code-point clusters such as a skin-tone emoji or e + combining accent come from joining.)
TEXT = st.lists(
    st.one_of(
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
        st.sampled_from(list("茶壶容量毫升，。、“”\"' ,\n\t\r ") + ["🍵", "👍🏽", "e\u0301"]),
    ),
    max_size=60,
).map("".join)


# No deadline: the first Chinese text loads jieba's dictionary (about a second).
PROPERTY = settings(deadline=None, max_examples=300)


@PROPERTY
@given(TEXT)
def test_tokens_join_back_to_the_text(text):
    assert "".join(tokenize(text)) == text


@PROPERTY
@given(TEXT, TEXT)
def test_applying_a_diff_reproduces_the_target_text(old, new):
    segments = text_diff(old, new)
    assert diff_new_text(segments) == new
    assert diff_old_text(segments) == old


@PROPERTY
@given(TEXT, st.lists(st.tuples(st.integers(-5, 90), st.integers(-5, 90),
                                st.sampled_from(["error", "warning", "info"])), max_size=6))
def test_flag_marks_cover_the_text_exactly_once(text, spans):
    flags = [{"code": f"c{i}", "severity": severity, "message": f"m{i}",
              "span": [start, end]} for i, (start, end, severity) in enumerate(spans)]
    marked = mark_flags(text, flags)
    assert "".join(segment.text for segment in marked.segments) == text


# -- workflow ----------------------------------------------------------------------------------

State = Draft.State


class Workflow(RuleBasedStateMachine):
    """Editors save, choose and submit; reviewers approve, request changes and reject — in any
    order, with fresh or stale revision ids. Refusals are fine; invalid states are not."""

    @initialize()
    def start(self):
        self.editor = UserFactory(roles=["Editor"])
        self.other_editor = UserFactory(roles=["Editor"])
        self.reviewer = UserFactory(roles=["Reviewer"])
        self.draft = draft_with_text("A kettle made of stainless steel.")
        self.seen_revisions = [self.draft.current_revision_id]

    def _act(self, action, **kwargs):
        try:
            action(draft=self.draft, **kwargs)
        except services.WorkflowError:
            pass
        except services.RevisionConflict:
            pass
        self.draft.refresh_from_db()
        if self.draft.current_revision_id not in self.seen_revisions:
            self.seen_revisions.append(self.draft.current_revision_id)

    @rule(text=st.sampled_from(["A kettle.", "A steel kettle.", "一把不锈钢水壶。", ""]),
          stale=st.booleans(), second_editor=st.booleans())
    def save(self, text, stale, second_editor):
        base = self.seen_revisions[0] if stale else self.draft.current_revision_id
        user = self.other_editor if second_editor else self.editor
        self._act(services.revision_save, user=user, text=text, base_revision_id=base)

    @rule()
    def submit(self):
        self._act(services.draft_submit, user=self.editor)

    @rule(decision=st.sampled_from(["approve", "request_changes", "reject"]),
          stale=st.booleans())
    def decide(self, decision, stale):
        revision = self.seen_revisions[0] if stale else self.draft.current_revision_id
        action = {"approve": services.draft_approve,
                  "request_changes": services.draft_request_changes,
                  "reject": services.draft_reject}[decision]
        self._act(action, user=self.reviewer, revision_id=revision, comment="Needs the size.")

    @invariant()
    def approved_means_an_approval_pinned_to_the_current_text(self):
        draft = self.draft
        if draft.state in {State.APPROVED, State.EXPORTED}:
            assert draft.approved_revision_id == draft.current_revision_id
            assert ReviewDecision.objects.filter(
                draft=draft, revision_id=draft.approved_revision_id,
                decision=ReviewDecision.Decision.APPROVE).exists()
        if draft.state == State.EXPORTED:
            assert draft.exported_revision_id is not None

    @invariant()
    def the_current_revision_belongs_to_the_draft(self):
        if self.draft.current_revision_id is not None:
            assert self.draft.current_revision.draft_id == self.draft.pk


@pytest.mark.django_db
def test_no_sequence_of_workflow_actions_reaches_an_invalid_state():
    test_case = Workflow.TestCase
    test_case.settings = settings(max_examples=15, stateful_step_count=10, deadline=None,
                                  suppress_health_check=[HealthCheck.too_slow])
    test_case().runTest()
