"""The set-up commands `make run` relies on, as a new user would run them."""

import json

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from editorial.models import Brand, ModelVersion, Product

pytestmark = pytest.mark.django_db


def test_setup_demo_loads_brands_catalog_and_users_with_printed_passwords(settings, tmp_path,
                                                                            capsys):
    settings.VAR_DIR = tmp_path
    demo = settings.BASE_DIR / "data" / "demo"
    products = sum(1 for line in (demo / "catalog.jsonl").read_text("utf-8").split("\n")
                   if line.strip())
    call_command("setup_demo")
    out = capsys.readouterr().out
    assert f"imported {products}, updated 0, failed 0" in out
    assert Brand.objects.count() == len(json.loads((demo / "brands.json").read_text("utf-8")))
    assert "house examples house_examples.json: 42 loaded" in out
    assert Product.objects.filter(brand__isnull=True).count() == 0
    nordhavn = Brand.objects.get(name="Nordhavn Kitchen")
    assert nordhavn.voice and nordhavn.length_limits["description"] == 700
    passwords = json.loads((tmp_path / "demo-users.json").read_text())
    for username, role in [("editor", "Editor"), ("reviewer", "Reviewer"), ("admin", "Admin")]:
        assert f"{username:<9} {passwords[username]}" in out
        user = authenticate(username=username, password=passwords[username])
        assert user is not None and user.groups.filter(name=role).exists()
    assert authenticate(username="admin", password=passwords["admin"]).is_superuser

    call_command("setup_demo")  # a second `make run` updates, and keeps the same passwords
    out = capsys.readouterr().out
    assert f"imported 0, updated {products}, failed 0" in out
    assert json.loads((tmp_path / "demo-users.json").read_text()) == passwords


def test_register_model_accepts_a_local_directory_or_a_hub_id(tiny_model_dir, capsys):
    call_command("register_model", "tiny", str(tiny_model_dir))
    call_command("register_model", "qwen", "Qwen/Qwen2.5-0.5B-Instruct", "--default")
    tiny, qwen = ModelVersion.objects.get(name="tiny"), ModelVersion.objects.get(name="qwen")
    assert (tiny.source, tiny.path) == ("local", str(tiny_model_dir))
    assert (qwen.source, qwen.path, qwen.is_default) == ("hub", "Qwen/Qwen2.5-0.5B-Instruct", True)
    assert ModelVersion.objects.filter(is_default=True).count() == 1


def test_register_model_refuses_a_directory_that_is_not_a_model(tmp_path):
    with pytest.raises(CommandError, match="no config.json"):
        call_command("register_model", "empty", str(tmp_path))
    with pytest.raises(CommandError, match="neither an existing directory nor a hub id"):
        call_command("register_model", "typo", "/no/such/dir")
    assert not ModelVersion.objects.exists()


@pytest.mark.slow
def test_install_default_model_registers_gemma_as_default_and_is_idempotent(
        default_model_dir, gemma_model_dir, capsys):
    call_command("install_default_model")
    call_command("install_default_model")
    default = ModelVersion.objects.get(is_default=True)
    assert (default.name, default.source, default.path) == (
        "gemma-3-270m", "packaged", str(gemma_model_dir))
    smollm2 = ModelVersion.objects.get(name="SmolLM2-135M-Instruct")
    assert (smollm2.is_default, smollm2.path) == (False, str(default_model_dir))
    assert "model gemma-3-270m (default) ready at" in capsys.readouterr().out
