from django.db import migrations, models


class Migration(migrations.Migration):
    """Export records: filters, progress and the stored file of background exports."""

    dependencies = [("editorial", "0004_draft_comments_presence")]

    operations = [
        migrations.AlterField(
            model_name="exportbatch",
            name="format",
            field=models.CharField(
                choices=[("csv", "CSV"), ("jsonl", "JSON Lines"), ("shopify", "Shopify CSV")],
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="exportbatch",
            name="changed_only",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="exportbatch",
            name="bom",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="exportbatch",
            name="formula_guard",
            field=models.BooleanField(default=True),
        ),
        migrations.AddField(
            model_name="exportbatch",
            name="status",
            field=models.CharField(
                choices=[("queued", "Queued"), ("running", "Running"), ("done", "Done"),
                         ("failed", "Failed")],
                db_index=True, default="done", max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="exportbatch",
            name="total",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="exportbatch",
            name="file",
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.AddField(
            model_name="exportbatch",
            name="size",
            field=models.PositiveBigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="exportbatch",
            name="error",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="exportbatch",
            name="started_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="exportbatch",
            name="finished_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
