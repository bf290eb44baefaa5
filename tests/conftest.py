import importlib
import os

import pytest
from django.apps import apps

from tests.factories import UserFactory

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def _empty_cache():
    """Login and API rate limits count in the cache: no test inherits another's counts."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _default_language():
    """A request's LocaleMiddleware leaves its language active in the thread after the
    response; a test that asked for Chinese must not turn the next test's messages Chinese."""
    yield
    from django.utils import translation

    translation.deactivate()


@pytest.fixture(autouse=True)
def reference_data(request):
    """Transactional tests (worker processes, the browser) start from a flushed database, which
    loses the rows migrations seed: content kinds and role groups. Put them back the way the
    migration does. (serialized_rollback proved unreliable once a live server had run.)"""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        return
    request.getfixturevalue("_django_db_helper")
    from editorial.roles import roles_sync

    importlib.import_module("editorial.migrations.0002_seed_kinds_and_roles").seed(apps, None)
    roles_sync()


@pytest.fixture
def editor(db):
    return UserFactory(username="edith", roles=["Editor"])


@pytest.fixture
def reviewer(db):
    return UserFactory(username="rey", roles=["Reviewer"])


@pytest.fixture
def admin_user(db):
    return UserFactory(username="ada", roles=["Admin"], is_staff=True, is_superuser=True)


@pytest.fixture
def outsider(db):
    """Logged in, but in no Copydesk group."""
    return UserFactory(username="olly")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A random-weight model in the default model's architecture, with its real tokenizer."""
    from generation.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def default_model_dir():
    """The real default model, converted once into COPYDESK_MODEL_DIR (kept between runs)."""
    from django.conf import settings

    from generation.registry import install_default_model

    return install_default_model(settings.COPYDESK_MODEL_DIR)


@pytest.fixture(scope="session")
def gemma_model_dir():
    """The packaged Gemma 3 270M, converted once into COPYDESK_MODEL_DIR (kept between runs)."""
    from django.conf import settings

    from generation.registry import GEMMA_MODEL_NAME, install_packaged_model

    return install_packaged_model(GEMMA_MODEL_NAME, settings.COPYDESK_MODEL_DIR)
