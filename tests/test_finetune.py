"""Fine-tuning from the desk: the command, the admin form, progress in the UI, the Celery task on
the gpu queue, and the new model version generating drafts."""

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from transformers import AutoModelForCausalLM

from copydesk.celery import app
from editorial import training_data
from editorial.models import Candidate, Draft, FineTuneRun, ModelVersion, Product, Revision
from editorial.services import generation_job_request, model_version_register
from editorial.workers import finetune as finetune_worker
from editorial.workers import generation as generation_worker
from tests.factories import BrandFactory, DraftFactory, ProductFactory

NAMES = ["kettle", "teapot", "saucepan", "skillet", "colander", "grater", "whisk", "ladle",
         "trivet", "carafe", "tumbler", "platter", "ramekin", "strainer", "mortar", "spatula"]


def skus_by_split(train: int, validation: int) -> list[str]:
    """SKUs the hash split puts ``train`` into train and ``validation`` into validation."""
    chosen = {"train": [], "validation": []}
    i = 0
    while len(chosen["train"]) < train or len(chosen["validation"]) < validation:
        sku = f"FT-{i:03d}"
        part = training_data.split_of(sku)
        if len(chosen[part]) < (train if part == "train" else validation):
            chosen[part].append(sku)
        i += 1
    return chosen["train"] + chosen["validation"]


def register_tiny(model_dir) -> ModelVersion:
    """The tiny random-weight model as the default model version, ``tiny``."""
    return model_version_register(name="tiny", path=str(model_dir),
                                  source=ModelVersion.Source.LOCAL, make_default=True)


def approved_edits(base: ModelVersion, count_train: int = 6, count_validation: int = 2):
    """Approved drafts whose editors rewrote the model's text into the house pattern."""
    brand = BrandFactory(name="Nordhavn")
    for i, sku in enumerate(skus_by_split(count_train, count_validation)):
        name = NAMES[i]
        product = ProductFactory(sku=sku, title=f"Nordhavn {name}", brand=brand)
        draft = DraftFactory(product=product, kind_id="description")
        candidate = Candidate.objects.create(
            draft=draft, index=0, text=f"This is a {name}.", model_version=base,
            prompt=[{"role": "system", "content": "You write product copy for Nordhavn."},
                    {"role": "user", "content": f"Product: Nordhavn {name}.\nDescribe it."}],
        )
        first = Revision.objects.create(draft=draft, number=1, text=candidate.text,
                                        candidate=candidate)
        final = Revision.objects.create(
            draft=draft, number=2, parent=first,
            text=f"The Nordhavn {name} is made in Oslo from recycled steel. "
                 f"Every Nordhavn {name} comes with a two-year warranty and free returns.",
        )
        draft.current_revision = draft.approved_revision = final
        draft.state = Draft.State.APPROVED
        draft.approved_at = timezone.now()
        draft.save()


@pytest.mark.slow
def test_finetuning_the_default_model_lowers_validation_loss_and_the_new_version_generates(
    db, default_model_dir, settings, tmp_path, monkeypatch
):
    monkeypatch.setenv("COPYDESK_TORCH_THREADS", "2")
    settings.COPYDESK_MODEL_DIR = tmp_path / "models"
    base = model_version_register(name="smollm2", path=str(default_model_dir),
                                  source=ModelVersion.Source.PACKAGED, make_default=True)
    approved_edits(base)

    # LoRA keeps this test short on a busy 2-core machine (no optimizer state for 135M
    # weights); full fine-tuning runs the same loop and is covered on the tiny model.
    call_command("finetune", "--base", "smollm2", "--name", "smollm2-nordhavn", "--lora",
                 "--epochs", "1", "--lr", "2e-3", "--batch-size", "3", "--max-length", "128",
                 "--inline")

    run = FineTuneRun.objects.get(name="smollm2-nordhavn")
    assert run.status == FineTuneRun.Status.SUCCEEDED, run.error
    before, after = run.metrics["before"], run.metrics["after"]
    print("validation loss", before, after, "seconds", run.metrics["seconds"])
    assert (run.train_records, run.validation_records) == (6, 2)
    assert run.step == run.total_steps == 2
    assert [step for step, _ in run.progress] == [1, 2]
    assert after["loss"] < 0.8 * before["loss"]
    assert after["perplexity"] < before["perplexity"]

    version = run.result
    assert version.name == "smollm2-nordhavn"
    assert version.source == ModelVersion.Source.FINETUNED
    assert version.parent == base
    assert version.status == ModelVersion.Status.READY
    assert version.data_hash == run.data_hash and len(version.data_hash) == 64
    assert version.params["lr"] == 2e-3 and version.metrics["after"] == after
    assert Path(version.path).is_dir()
    assert AutoModelForCausalLM.from_pretrained(version.path).num_parameters() > 100_000_000

    product = ProductFactory(sku="NEW-1", title="Nordhavn kettle 1.7 L")
    job = generation_job_request(
        products=Product.objects.filter(pk=product.pk), kinds=["description"], user=None,
        params={"do_sample": False, "max_new_tokens": 4}, model_version=version,
        enqueue=False,
    )
    generation_worker.run_job_inline(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded"
    candidate = Candidate.objects.get(draft__product=product)
    assert candidate.model_version == version and candidate.text.strip()


def test_the_finetune_task_runs_on_the_gpu_queue():
    route = app.amqp.router.route({}, finetune_worker.finetune_model.name)
    assert route["queue"].name == "gpu"


def test_command_runs_inline_with_lora_on_the_tiny_model(db, tiny_model_dir, settings,
                                                         tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COPYDESK_TORCH_THREADS", "1")
    settings.COPYDESK_MODEL_DIR = tmp_path / "models"
    base = register_tiny(tiny_model_dir)
    approved_edits(base, 3, 1)
    call_command("finetune", "--base", "tiny", "--name", "tiny-lora", "--lora",
                 "--epochs", "1", "--lr", "1e-3", "--batch-size", "2", "--inline")
    out = capsys.readouterr().out
    assert "validation loss" in out and "registered model version tiny-lora" in out
    run = FineTuneRun.objects.get(name="tiny-lora")
    assert run.hyperparameters["lora"] is True
    assert json.loads((Path(run.output_path) / "config.json").read_text())
    assert not any("lora" in k for k in AutoModelForCausalLM.from_pretrained(
        run.output_path).state_dict())


def test_a_base_model_is_finetuned_on_completion_documents(db, tiny_model_dir, settings,
                                                          tmp_path, monkeypatch):
    """A desk whose default is a base model (Gemma) fine-tunes it on the format it generates
    with: the model has no chat template, so chat records could not even be encoded."""
    import shutil

    monkeypatch.setenv("COPYDESK_TORCH_THREADS", "1")
    settings.COPYDESK_MODEL_DIR = tmp_path / "models"
    base_dir = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base_dir)
    (base_dir / "chat_template.jinja").unlink()
    base = model_version_register(name="base", path=str(base_dir),
                                  source=ModelVersion.Source.LOCAL, make_default=True)
    base.prompt_format = "completion"
    base.save(update_fields=["prompt_format"])
    approved_edits(base, 3, 1)
    call_command("finetune", "--base", "base", "--name", "base-ft", "--epochs", "1",
                 "--lr", "1e-3", "--batch-size", "2", "--inline")
    run = FineTuneRun.objects.get(name="base-ft")
    assert run.status == FineTuneRun.Status.SUCCEEDED, run.error
    assert run.train_records == 3 and run.validation_records == 1
    tuned = ModelVersion.objects.get(name="base-ft")
    assert (tuned.parent, tuned.prompt_format) == (base, "completion")


def test_the_run_records_each_phase_and_beats_while_it_evaluates(
    db, tiny_model_dir, settings, tmp_path, monkeypatch
):
    from editorial import services

    monkeypatch.setenv("COPYDESK_TORCH_THREADS", "1")
    # Every evaluation batch beats.
    monkeypatch.setattr(finetune_worker, "FINETUNE_BEAT_SECONDS", 0.0)
    settings.COPYDESK_MODEL_DIR = tmp_path / "models"
    base = register_tiny(tiny_model_dir)
    approved_edits(base, 3, 2)
    written = []
    record_phase = services.finetune_run_phase

    def spy(*, run_id, phase):
        record_phase(run_id=run_id, phase=phase)
        written.append(FineTuneRun.objects.values_list("phase", "heartbeat_at").get(pk=run_id))

    monkeypatch.setattr(services, "finetune_run_phase", spy)
    run = services.finetune_run_request(
        base=base, name="tiny-phases", user=None, enqueue=False,
        hyperparameters={"epochs": 1, "lr": 1e-3, "batch_size": 2, "eval_batch_size": 1})
    assert finetune_worker.run_finetune(run_id=run.pk) is not None

    phases = [phase for phase, _ in written]
    assert list(dict.fromkeys(phases)) == list(FineTuneRun.Phase.values)
    # Two validation records, one per batch: each evaluation beats after each of them.
    assert phases.count("evaluating_before") == phases.count("evaluating_after") == 3
    beats = [beat for _, beat in written]
    assert beats == sorted(beats) and len(set(beats)) > 1
    run.refresh_from_db()
    assert run.status == FineTuneRun.Status.SUCCEEDED and run.phase == "saving"


def test_the_phases_are_the_cores():
    from generation.finetune import PHASES

    assert tuple(FineTuneRun.Phase.values) == PHASES


def test_a_run_without_training_data_fails_with_the_reason(db, tiny_model_dir, settings,
                                                          tmp_path):
    settings.COPYDESK_MODEL_DIR = tmp_path / "models"
    register_tiny(tiny_model_dir)
    with pytest.raises(SystemExit):
        call_command("finetune", "--base", "tiny", "--name", "empty", "--inline")
    run = FineTuneRun.objects.get(name="empty")
    assert run.status == FineTuneRun.Status.FAILED
    assert "No approved drafts" in run.error
    assert run.phase == FineTuneRun.Phase.PREPARING
    assert not ModelVersion.objects.filter(name="empty").exists()


def test_admin_form_queues_a_run_and_its_page_polls_progress(
    db, client, admin_user, tiny_model_dir, django_capture_on_commit_callbacks, monkeypatch
):
    base = register_tiny(tiny_model_dir)
    sent = []
    monkeypatch.setattr(finetune_worker.finetune_model, "delay", lambda run_id: sent.append(run_id))
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("finetune_start"), {
            "base": base.pk, "name": "tiny-v2", "epochs": 2, "lr": "0.0001", "batch_size": 4,
        })
    run = FineTuneRun.objects.get(name="tiny-v2")
    assert response.status_code == 302
    assert response["Location"] == reverse("finetune_detail", args=[run.pk])
    assert sent == [run.pk]
    assert run.hyperparameters["epochs"] == 2 and run.requested_by == admin_user

    FineTuneRun.objects.filter(pk=run.pk).update(
        status="running", step=3, total_steps=10, loss=2.5,
        progress=[[1, 3.1], [2, 2.8], [3, 2.5]],
    )
    url = reverse("finetune_detail", args=[run.pk])
    fragment = client.get(url, headers={"HX-Request": "true"})
    html = fragment.content.decode()
    assert fragment.status_code == 200
    assert "step 3 of 10" in html and "2.5000" in html and 'hx-trigger="every 1s"' in html
    assert "<polyline" in html and "<html" not in html

    FineTuneRun.objects.filter(pk=run.pk).update(
        status="succeeded", step=10, metrics={"before": {"loss": 3.2, "perplexity": 24.5},
                                              "after": {"loss": 2.1, "perplexity": 8.2}})
    done = client.get(url, headers={"HX-Request": "true"})
    assert done.status_code == 286  # htmx: stop polling
    assert "3.2000" in done.content.decode() and "2.1000" in done.content.decode()

    taken = client.post(reverse("finetune_start"), {
        "base": base.pk, "name": "tiny-v2", "epochs": 1, "lr": "0.0001", "batch_size": 4})
    assert taken.status_code == 400 and "exists already" in taken.content.decode()


def test_the_run_page_says_what_a_run_is_doing_and_where_a_failed_one_stopped(
    db, client, admin_user, tiny_model_dir, settings
):
    from editorial.services import finetune_run_phase, finetune_run_request, finetune_run_start

    base = register_tiny(tiny_model_dir)
    run = finetune_run_request(base=base, name="tiny-v3", hyperparameters={}, user=None,
                               enqueue=False)
    finetune_run_start(run_id=run.pk)
    finetune_run_phase(run_id=run.pk, phase="evaluating_before")
    client.force_login(admin_user)
    url = reverse("finetune_detail", args=[run.pk])
    html = client.get(url).content.decode()
    assert ("Running</strong> · <span data-phase>measuring the base model on the validation "
            "split") in html
    assert "Running · measuring the base model" in client.get(reverse("training_home")
                                                             ).content.decode()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    assert "<span data-phase>用验证集评估基础模型" in client.get(url).content.decode()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    finetune_run_phase(run_id=run.pk, phase="training")
    FineTuneRun.objects.filter(pk=run.pk).update(status="failed", error="Out of memory.")
    finetune_run_phase(run_id=run.pk, phase="saving")  # a finished run's phase stays put
    failed = client.get(url, headers={"HX-Request": "true"})
    html = failed.content.decode()
    assert failed.status_code == 286
    assert "Out of memory. It stopped while training." in html
    assert "data-phase" not in html
    assert "Start again with the same settings" in html


def test_finetune_wait_says_what_a_running_run_is_doing(db, tiny_model_dir, monkeypatch,
                                                       capsys):
    from editorial.management.commands import _progress
    from editorial.management.commands import finetune as command
    from editorial.services import finetune_run_phase, finetune_run_request, finetune_run_start

    base = register_tiny(tiny_model_dir)
    run = finetune_run_request(base=base, name="tiny-w", hyperparameters={}, user=None,
                               enqueue=False)
    finetune_run_start(run_id=run.pk)
    finetune_run_phase(run_id=run.pk, phase="training")

    def worker_finishes(_seconds):
        FineTuneRun.objects.filter(pk=run.pk).update(status="failed", error="Out of memory.")

    monkeypatch.setattr(_progress.time, "sleep", worker_finishes)
    with pytest.raises(SystemExit):
        command.Command()._follow(run.pk)
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"run {run.pk} running (training): step 0/0, loss —",
                                f"run {run.pk} failed: step 0/0, loss —"]
    assert "Out of memory." in err


def test_a_failed_run_starts_again_with_the_same_settings_once(
    db, client, admin_user, editor, tiny_model_dir, django_capture_on_commit_callbacks,
    monkeypatch
):
    from editorial.services import finetune_run_request

    base = register_tiny(tiny_model_dir)
    sent = []
    monkeypatch.setattr(finetune_worker.finetune_model, "delay", lambda run_id: sent.append(run_id))
    failed = finetune_run_request(base=base, name="tiny-again", user=admin_user, enqueue=False,
                                  hyperparameters={"epochs": 4, "lr": 2e-4, "lora": True},
                                  filters={"brand": "Nordhavn"})
    FineTuneRun.objects.filter(pk=failed.pk).update(status="failed", error="Killed.")
    retry = reverse("finetune_retry", args=[failed.pk])

    client.force_login(editor)
    assert client.post(retry).status_code == 403
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(retry)
    again = FineTuneRun.objects.exclude(pk=failed.pk).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("finetune_detail", args=[again.pk])
    assert sent == [again.pk]
    assert (again.name, again.base, again.status) == ("tiny-again", base, "queued")
    assert again.hyperparameters == FineTuneRun.objects.get(pk=failed.pk).hyperparameters
    assert again.filters == {"brand": "Nordhavn"} and again.requested_by == admin_user
    assert FineTuneRun.objects.get(pk=failed.pk).error == "Killed."  # kept for the record

    # A second click (the same failed run) finds the name taken by the new run: no third run.
    twice = client.post(retry, follow=True)
    assert "exists already" in twice.content.decode()
    assert FineTuneRun.objects.count() == 2
    # Only failed runs start again.
    not_failed = client.post(reverse("finetune_retry", args=[again.pk]), follow=True)
    assert "Only a failed run can be started again." in not_failed.content.decode()
    assert FineTuneRun.objects.count() == 2 and sent == [again.pk]


def test_a_run_requested_while_the_broker_is_down_is_sent_when_it_is_back(
    db, client, admin_user, tiny_model_dir, django_capture_on_commit_callbacks, monkeypatch
):
    from datetime import timedelta

    from editorial.services import generation_jobs_resume

    base = register_tiny(tiny_model_dir)

    def broker_down(run_id):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(finetune_worker.finetune_model, "delay", broker_down)
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("finetune_start"), {
            "base": base.pk, "name": "tiny-later", "epochs": 1, "lr": "0.0001", "batch_size": 4,
        })
    assert response.status_code == 302
    run = FineTuneRun.objects.get(name="tiny-later")
    assert run.status == FineTuneRun.Status.QUEUED and run.awaiting_broker
    assert "The broker is unavailable: this run is queued" in client.get(
        response["Location"]).content.decode()
    assert "waiting for the broker" in client.get(reverse("training_home")).content.decode()

    sent = []
    monkeypatch.setattr(finetune_worker.finetune_model, "delay", lambda run_id: sent.append(run_id))
    assert generation_jobs_resume(queue_depth=lambda: 0).runs == []  # younger than the grace
    FineTuneRun.objects.filter(pk=run.pk).update(
        created_at=timezone.now() - timedelta(minutes=2))
    assert generation_jobs_resume(queue_depth=lambda: 5).runs == [run.pk]
    assert sent == [run.pk]
    run.refresh_from_db()
    assert run.error == "" and not run.awaiting_broker


@pytest.mark.parametrize("depth, resent", [(0, True), (2, False), (None, False)])
def test_a_run_whose_message_the_broker_lost_is_sent_again_only_if_the_queue_is_empty(
    db, tiny_model_dir, monkeypatch, depth, resent
):
    from datetime import timedelta

    from editorial.services import finetune_run_request, generation_jobs_resume

    base = register_tiny(tiny_model_dir)
    run = finetune_run_request(base=base, name="tiny-lost", hyperparameters={}, user=None,
                               enqueue=False)
    FineTuneRun.objects.filter(pk=run.pk).update(
        created_at=timezone.now() - timedelta(hours=1))
    sent = []
    monkeypatch.setattr(finetune_worker.finetune_model, "delay", lambda run_id: sent.append(run_id))
    report = generation_jobs_resume(lost_seconds=600, queue_depth=lambda: depth)
    assert report.runs == sent == ([run.pk] if resent else [])


def test_a_run_whose_worker_died_is_failed_and_a_beating_one_is_left_alone(
    db, client, admin_user, tiny_model_dir, settings
):
    from datetime import timedelta

    from editorial.services import (
        finetune_run_phase,
        finetune_run_progress,
        finetune_run_request,
        finetune_run_start,
        generation_jobs_resume,
    )

    settings.COPYDESK_FINETUNE_STALL_SECONDS = 1800
    base = register_tiny(tiny_model_dir)
    dead, alive, evaluating = (
        finetune_run_request(base=base, name=name, hyperparameters={}, user=None, enqueue=False)
        for name in ("tiny-dead", "tiny-alive", "tiny-evaluating"))
    for run in (dead, alive, evaluating):
        assert finetune_run_start(run_id=run.pk) is not None
    FineTuneRun.objects.update(heartbeat_at=timezone.now() - timedelta(hours=1))
    finetune_run_progress(run_id=alive.pk, step=1, total_steps=4, loss=2.0)  # it beats
    # A long evaluation has no optimizer steps, but its phase beats.
    finetune_run_phase(run_id=evaluating.pk, phase="evaluating_after")

    report = generation_jobs_resume(queue_depth=lambda: 0)
    assert report.runs_failed == [dead.pk]
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == FineTuneRun.Status.FAILED and dead.finished_at is not None
    assert "The worker stopped while fine-tuning" in dead.error
    assert alive.status == FineTuneRun.Status.RUNNING
    assert FineTuneRun.objects.get(pk=evaluating.pk).status == FineTuneRun.Status.RUNNING
    client.force_login(admin_user)
    page = client.get(reverse("finetune_detail", args=[dead.pk]), headers={"HX-Request": "true"})
    assert page.status_code == 286  # the page stops polling and says why
    assert "Start the run again." in page.content.decode()


def test_only_admins_can_finetune(db, client, editor, tiny_model_dir):
    base = register_tiny(tiny_model_dir)
    client.force_login(editor)
    response = client.post(reverse("finetune_start"), {
        "base": base.pk, "name": "nope", "epochs": 1, "lr": "0.0001", "batch_size": 4})
    assert response.status_code == 403
    assert not FineTuneRun.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_finetune_wait_follows_a_run_on_a_real_worker(tiny_model_dir, settings, tmp_path,
                                                      capsys):
    import os
    import threading

    from django.db import connections

    from editorial.models import ContentKind
    from tests.worker import RedisServer, Worker, producer_on

    # Transactional test: the seeded kind may be gone after other transactional tests.
    ContentKind.objects.get_or_create(code="description", defaults={
        "label": "Description", "instructions": "Describe the product.", "max_new_tokens": 200})
    settings.COPYDESK_MODEL_DIR = tmp_path / "models"
    base = register_tiny(tiny_model_dir)
    approved_edits(base, 3, 1)
    redis = RedisServer(tmp_path / "redis").start()
    log_dir = settings.VAR_DIR / "test-logs"
    log_dir.mkdir(exist_ok=True)
    env = {"CELERY_BROKER_URL": redis.url, "COPYDESK_MODEL_DIR": str(tmp_path / "models"),
           "COPYDESK_TORCH_THREADS": "1"}
    failures = []

    def follow():
        try:
            call_command("finetune", "--base", "tiny", "--name", "tiny-worker", "--epochs", "2",
                         "--lr", "1e-3", "--batch-size", "2", "--wait")
        except BaseException as exc:  # SystemExit from a failed run included
            failures.append(exc)
        finally:
            connections.close_all()  # this thread's own connection

    try:
        with producer_on(redis.url):
            worker = Worker(None, log_dir / f"finetune-{os.getpid()}.log", env).start()
            try:
                command = threading.Thread(target=follow, daemon=True)
                command.start()
                command.join(timeout=240)
                assert not command.is_alive(), "finetune --wait did not return in 240 s"
            finally:
                worker.stop()
    finally:
        redis.stop()

    assert failures == []
    out = capsys.readouterr().out
    run = FineTuneRun.objects.get(name="tiny-worker")
    assert run.status == FineTuneRun.Status.SUCCEEDED, run.error
    assert f"run {run.pk} succeeded: step {run.total_steps}/{run.total_steps}" in out
    assert "validation loss" in out and "registered model version tiny-worker" in out
    # The worker wrote the model where the desk keeps fine-tuned versions, and registered it.
    version = ModelVersion.objects.get(name="tiny-worker")
    assert version.parent == base and version.path == run.output_path
    assert Path(version.path).is_relative_to(tmp_path / "models")
    assert AutoModelForCausalLM.from_pretrained(version.path).num_parameters() > 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_while_fine_tuning_fails_the_run_and_it_starts_again(
    tiny_model_dir, settings, tmp_path, client, admin_user
):
    import os

    from editorial.models import ContentKind
    from editorial.services import finetune_run_request, generation_jobs_resume
    from tests.worker import RedisServer, Worker, producer_on, wait_until

    # Transactional test: the seeded kind may be gone after other transactional tests.
    ContentKind.objects.get_or_create(code="description", defaults={
        "label": "Description", "instructions": "Describe the product.", "max_new_tokens": 200})
    models = tmp_path / "models"
    settings.COPYDESK_MODEL_DIR = models
    base = register_tiny(tiny_model_dir)
    approved_edits(base, 6, 2)
    redis = RedisServer(tmp_path / "redis").start()
    log_dir = settings.VAR_DIR / "test-logs"
    log_dir.mkdir(exist_ok=True)
    env = {"CELERY_BROKER_URL": redis.url, "COPYDESK_MODEL_DIR": str(models),
           "COPYDESK_TORCH_THREADS": "1"}

    def status(run):
        return FineTuneRun.objects.values_list("status", "step").get(pk=run.pk)

    try:
        with producer_on(redis.url):
            first = Worker(None, log_dir / f"finetune-killed-{os.getpid()}.log", env).start()
            try:
                run = finetune_run_request(
                    base=base, name="tiny-killed", user=admin_user,
                    hyperparameters={"epochs": 40, "lr": 1e-3, "batch_size": 2})
                wait_until(lambda: status(run)[1] >= 2, 120, "the run to train a few steps")
                first.kill()
            finally:
                first.stop()
            run.refresh_from_db()
            assert (run.status, run.phase) == ("running", "training")
            assert run.step < run.total_steps

            # The killed worker's message finds the run claimed; only the sweeper ends it.
            settings.COPYDESK_FINETUNE_STALL_SECONDS = 1
            wait_until(lambda: generation_jobs_resume().runs_failed == [run.pk], 10,
                       "the sweeper to fail the silent run")
            run.refresh_from_db()
            assert run.status == FineTuneRun.Status.FAILED
            assert "The worker stopped while fine-tuning" in run.error
            assert not ModelVersion.objects.filter(name="tiny-killed").exists()
            assert not models.exists() or not any(models.rglob("*")), "half-written model"
            client.force_login(admin_user)
            page = client.get(reverse("finetune_detail", args=[run.pk]),
                              headers={"HX-Request": "true"})
            assert page.status_code == 286
            assert "It stopped while training." in page.content.decode()

            # Started again from its page, on a healthy worker, it finishes.
            again = client.post(reverse("finetune_retry", args=[run.pk]))
            retried = FineTuneRun.objects.exclude(pk=run.pk).get(name="tiny-killed")
            assert again["Location"] == reverse("finetune_detail", args=[retried.pk])
            second = Worker(None, log_dir / f"finetune-again-{os.getpid()}.log", env).start()
            try:
                wait_until(lambda: status(retried)[0] in FineTuneRun.FINISHED, 240,
                           "the run started again to finish")
            finally:
                second.stop()
    finally:
        redis.stop()

    retried.refresh_from_db()
    assert retried.status == FineTuneRun.Status.SUCCEEDED, retried.error
    assert ModelVersion.objects.get(name="tiny-killed").path == retried.output_path
    assert FineTuneRun.objects.get(pk=run.pk).status == FineTuneRun.Status.FAILED


# --- The new version's name is a folder inside the model folder ---------------------------------

BAD_NAMES = ["../..", "..", "/abs", "a/b", "", ".", ".hidden", "a\\b", "x" * 201]


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` and its content (None for folders)."""
    return {str(path.relative_to(root)): None if path.is_dir() else path.read_bytes()
            for path in sorted(root.rglob("*"))}


@pytest.fixture
def model_folder_with_neighbours(settings, tmp_path):
    """The model folder, a finished fine-tune inside it, and files outside that ``../..`` or a
    link would reach."""
    models = tmp_path / "models"
    (models / "finetuned" / "earlier").mkdir(parents=True)
    (models / "finetuned" / "earlier" / "config.json").write_text("{}")
    (tmp_path / "abs").mkdir()
    (tmp_path / "abs" / "keep.txt").write_text("not a model")
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "keep.txt").write_text("not a model")
    settings.COPYDESK_MODEL_DIR = models
    return tmp_path


@pytest.mark.parametrize("name", BAD_NAMES)
def test_the_command_refuses_a_name_that_is_not_one_folder_name(
    db, tiny_model_dir, model_folder_with_neighbours, name
):
    from django.core.management.base import CommandError

    register_tiny(tiny_model_dir)
    before = tree(model_folder_with_neighbours)
    with pytest.raises(CommandError) as refused:
        call_command("finetune", "--base", "tiny", "--name", name, "--inline")
    assert "new model version" in str(refused.value)
    assert not FineTuneRun.objects.exists()
    assert tree(model_folder_with_neighbours) == before


@pytest.mark.parametrize("name", BAD_NAMES)
def test_the_service_refuses_a_name_that_is_not_one_folder_name(
    db, admin_user, tiny_model_dir, model_folder_with_neighbours, name
):
    from editorial.services import WorkflowError, finetune_run_request

    base = register_tiny(tiny_model_dir)
    with pytest.raises(WorkflowError) as refused:
        finetune_run_request(base=base, name=name, hyperparameters={}, user=admin_user,
                             enqueue=False)
    message = str(refused.value)
    assert "new model version" in message
    if name.strip():
        assert repr(name) in message and "folder name" in message
    assert not FineTuneRun.objects.exists()


def test_names_with_dots_and_digits_are_accepted_and_save_inside_the_model_folder(
    db, tiny_model_dir, model_folder_with_neighbours
):
    from editorial.services import finetune_output_dir, finetune_run_request

    base = register_tiny(tiny_model_dir)
    run = finetune_run_request(base=base, name="tiny-v1.2_b", hyperparameters={}, user=None,
                               enqueue=False)
    assert finetune_output_dir(run.name) == (
        model_folder_with_neighbours / "models" / "finetuned" / "tiny-v1.2_b").resolve()


def test_a_name_that_is_a_link_out_of_the_model_folder_is_refused(
    db, tiny_model_dir, model_folder_with_neighbours
):
    from editorial.services import WorkflowError, finetune_run_request

    base = register_tiny(tiny_model_dir)
    link = model_folder_with_neighbours / "models" / "finetuned" / "elsewhere"
    link.symlink_to(model_folder_with_neighbours / "abs", target_is_directory=True)
    with pytest.raises(WorkflowError, match="outside the model folder"):
        finetune_run_request(base=base, name="elsewhere", hyperparameters={}, user=None,
                             enqueue=False)
    assert (model_folder_with_neighbours / "abs" / "keep.txt").read_text() == "not a model"


@pytest.mark.parametrize("name", ["../../abs", "/abs", "a/b", "..", "elsewhere"])
def test_the_worker_refuses_a_recorded_run_whose_folder_is_outside_and_deletes_nothing(
    db, tiny_model_dir, model_folder_with_neighbours, name
):
    """A run recorded before the name rules (or edited in the database) fails with the reason;
    the training loop, which replaces its output folder, never starts."""
    from editorial.services import finetune_run_request

    base = register_tiny(tiny_model_dir)
    approved_edits(base, 3, 1)
    (model_folder_with_neighbours / "models" / "finetuned" / "elsewhere").symlink_to(
        model_folder_with_neighbours / "abs", target_is_directory=True)
    run = finetune_run_request(base=base, name="fine", hyperparameters={}, user=None,
                               enqueue=False)
    FineTuneRun.objects.filter(pk=run.pk).update(name=name)
    before = tree(model_folder_with_neighbours)

    assert finetune_worker.run_finetune(run_id=run.pk) is None

    run.refresh_from_db()
    assert run.status == FineTuneRun.Status.FAILED
    assert "ValueError" in run.error and ("outside" in run.error or "not a valid" in run.error)
    assert tree(model_folder_with_neighbours) == before
    assert not ModelVersion.objects.filter(source=ModelVersion.Source.FINETUNED).exists()
