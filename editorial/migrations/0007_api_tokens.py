import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def backfill_feed(apps, schema_editor):
    """Approved copy from before the feed existed, in approval order."""
    Draft = apps.get_model("editorial", "Draft")
    CopyFeedEntry = apps.get_model("editorial", "CopyFeedEntry")
    CopyFeedCounter = apps.get_model("editorial", "CopyFeedCounter")
    seq = 0
    rows = []
    approved = Draft.objects.filter(approved_revision__isnull=False, approved_at__isnull=False)
    for draft_id, revision_id, approved_at in approved.order_by("approved_at", "pk").values_list(
        "pk", "approved_revision_id", "approved_at"
    ).iterator():
        seq += 1
        rows.append(CopyFeedEntry(seq=seq, draft_id=draft_id, revision_id=revision_id,
                                  approved_at=approved_at))
    CopyFeedEntry.objects.bulk_create(rows, batch_size=2000)
    CopyFeedCounter.objects.create(pk=1, last_seq=seq)


class Migration(migrations.Migration):
    """API tokens (named, hashed, revocable) and the approved-copy feed."""

    dependencies = [
        ("editorial", "0006_learning"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("name", models.CharField(max_length=100, verbose_name="name")),
                ("key_hash", models.CharField(editable=False, max_length=64, unique=True)),
                ("prefix", models.CharField(editable=False, max_length=10)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("last_used_at", models.DateTimeField(blank=True, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, db_index=True, null=True)),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                           related_name="api_tokens",
                                           to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "verbose_name": "API token",
                "verbose_name_plural": "API tokens",
                "ordering": ["user", "-created_at", "-pk"],
            },
        ),
        migrations.CreateModel(
            name="CopyFeedCounter",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("last_seq", models.PositiveBigIntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name="CopyFeedEntry",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("seq", models.PositiveBigIntegerField(unique=True)),
                ("approved_at", models.DateTimeField(db_index=True)),
                ("draft", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                            related_name="feed_entries", to="editorial.draft")),
                ("revision", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                               related_name="+", to="editorial.revision")),
            ],
            options={"ordering": ["seq"], "verbose_name_plural": "copy feed entries"},
        ),
        migrations.RunPython(backfill_feed, migrations.RunPython.noop),
    ]
