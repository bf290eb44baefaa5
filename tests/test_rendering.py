"""Rendering shortcuts taken for speed must not change what users see."""

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.utils import translation

from editorial.models import Draft


class Choices(forms.Form):
    plain = forms.ChoiceField(choices=[("", "—"), ("a", "A & <b>"), ("1", "One")],
                              initial="a")
    grouped = forms.ChoiceField(choices=[("Tea", [("green", "绿茶"), ("oolong", "乌龙")]),
                                         ("x", 'Say "hi"')])
    many = forms.MultipleChoiceField(choices=[("a", "A"), ("b", "B")], initial=["a", "b"],
                                     widget=forms.SelectMultiple(attrs={"data-x": "1"}))
    disabled = forms.ChoiceField(choices=[("a", "A")], disabled=True, required=False)


def _squash(html: str) -> str:
    return "".join(line.strip() for line in html.splitlines())


@pytest.mark.parametrize("name", ["plain", "grouped", "many", "disabled"])
def test_the_select_override_writes_what_django_writes(name):
    ours = str(Choices()[name])
    djangos = str(Choices(renderer=DjangoTemplates())[name])
    assert "<option" in ours
    assert _squash(ours) == _squash(djangos)


def test_a_bound_select_marks_the_submitted_choice():
    html = str(Choices({"plain": "1"})["plain"])
    assert '<option value="1" selected>One</option>' in html
    assert '<option value="a">A &amp; &lt;b&gt;</option>' in html


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_state_labels_are_the_translated_choice_labels(language):
    with translation.override(language):
        for value, label in Draft.State.choices:
            assert Draft(state=value).get_state_display() == str(label)
    with translation.override("zh-hans"):
        assert Draft(state=Draft.State.APPROVED).get_state_display() != "Approved"


def test_database_connections_persist_and_are_checked_before_reuse(settings):
    database = settings.DATABASES["default"]
    assert database["CONN_MAX_AGE"] > 0 and database["CONN_HEALTH_CHECKS"] is True
