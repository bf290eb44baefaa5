"""The demo catalog is the quality benchmark's reference copy: large enough to hold out a third,
and every description fact-only by the desk's own checks under its brand's rules."""

import importlib
import json
import re
from pathlib import Path

import pytest

from generation.checks import INFO, check_text
from generation.prompts import BrandRules, KindSpec, ProductFacts, facts_text

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
ROWS = [json.loads(line) for line in (DEMO / "catalog.jsonl").read_text("utf-8").split("\n")
        if line.strip()]
BRANDS = {row["name"]: row for row in json.loads((DEMO / "brands.json").read_text("utf-8"))}
DESCRIPTION = next(
    KindSpec(code=code, label=label, instructions=text, max_chars=limit)
    for code, label, limit, _tokens, text
    in importlib.import_module("editorial.migrations.0002_seed_kinds_and_roles").KINDS
    if code == "description"
)


def test_the_catalog_is_large_enough_to_hold_out_thirty_products_in_both_languages():
    from benchmarks.quality import held_out

    assert len({row["sku"] for row in ROWS}) == len(ROWS) >= 90
    assert {row["locale"] for row in ROWS} == {"en", "zh-hans"}
    assert min(sum(row["locale"] == locale for row in ROWS) for locale in ("en", "zh-hans")) >= 45
    assert sum(held_out(row) for row in ROWS) >= 30
    assert all(row["brand"] in BRANDS and row["attributes"] for row in ROWS)


@pytest.mark.parametrize("row", [pytest.param(row, id=row["sku"]) for row in ROWS])
def test_reference_descriptions_pass_the_checks_with_their_brands_rules(row):
    brand = BRANDS[row["brand"]]
    rules = BrandRules(name=brand["name"], banned_terms=tuple(brand["banned_terms"]),
                       required_terms=tuple(brand["required_terms"]),
                       length_limits=brand["length_limits"])
    facts = ProductFacts(sku=row["sku"], title=row["title"], brand=row["brand"],
                         category=row["category"], attributes=row["attributes"],
                         locale=row["locale"])  # no source text: nothing grounds itself

    flags = check_text(row["description"], facts=facts, kind=DESCRIPTION, brand=rules)

    assert [f.message for f in flags if f.severity != INFO] == []
    # Stricter than the checks (which look at quantities with units): every number at all.
    digits = re.compile(r"\d+(?:\.\d+)?")
    assert set(digits.findall(row["description"])) <= set(digits.findall(facts_text(facts)))
