"""Products the generation tests write about, kept as data (``fixtures/products.json``) so each
test names the product it needs instead of spelling its facts out again."""

import json
from functools import cache
from pathlib import Path

import pytest

from generation.prompts import ProductFacts

PRODUCTS_FILE = Path(__file__).parent / "fixtures" / "products.json"


@cache
def _products() -> dict[str, dict]:
    return json.loads(PRODUCTS_FILE.read_text(encoding="utf-8"))


def sample_facts(name: str) -> ProductFacts:
    """A fresh ``ProductFacts`` each call: tests may replace fields on theirs."""
    return ProductFacts(**_products()[name])


def facts_fixture(name: str):
    """A fixture giving ``sample_facts(name)``; it takes the name of the variable it is bound to
    (``bottle = facts_fixture("bottle")``)."""

    @pytest.fixture
    def facts() -> ProductFacts:
        return sample_facts(name)

    return facts
