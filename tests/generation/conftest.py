"""Fixtures for the generation core: tiny models and engines, no database."""

import pytest

from generation.prompts import BrandRules, KindSpec
from tests.sample_facts import facts_fixture

SCRIPTED_REPLY = "A light steel bottle for daily use."


@pytest.fixture(scope="session")
def gen_tiny_model(tmp_path_factory):
    from generation.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("gen-tiny"))


@pytest.fixture(scope="session")
def gen_scripted_model(tmp_path_factory):
    from generation.testing import build_scripted_model

    return build_scripted_model(tmp_path_factory.mktemp("gen-scripted"), SCRIPTED_REPLY)


def _engine(path):
    import torch

    from generation.engine import Engine

    # One thread: a tiny model gains nothing from more, and on a busy CI box extra OpenMP
    # threads spin against other processes and slow these tests down several times. fp32: a
    # request's text does not depend on its batch only in fp32 (bf16 rounding flips choices).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COPYDESK_TORCH_THREADS", "1")
        return Engine(path, device="cpu", dtype=torch.float32)


@pytest.fixture(scope="session")
def tiny_engine(gen_tiny_model):
    return _engine(gen_tiny_model)


@pytest.fixture(scope="session")
def sliding_engine(tmp_path_factory):
    """A tiny Gemma 3 whose sliding layers see 16 positions: prompts and decoding cross it."""
    from generation.testing import build_tiny_sliding_model

    return _engine(build_tiny_sliding_model(tmp_path_factory.mktemp("sliding"), sliding_window=16))


@pytest.fixture(scope="session")
def scripted_engine(gen_scripted_model):
    return _engine(gen_scripted_model)


bottle = facts_fixture("bottle")
teapot = facts_fixture("teapot")


@pytest.fixture
def description():
    return KindSpec(
        code="description",
        label="product description",
        instructions="Write a product description of two or three sentences.",
        max_chars=400,
    )


@pytest.fixture
def brand():
    return BrandRules(
        name="Northwind",
        voice="Calm, practical, warm.",
        audience="Commuters and hikers",
        banned_terms=("cheap", "eco-friendly", "便宜"),
        required_terms=("Northwind",),
        length_limits={"description": 300},
    )
