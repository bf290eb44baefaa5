from django.db import migrations, models


def backfill(apps, schema_editor):
    """Each draft's product SKU and kind position, in one set-based UPDATE."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "UPDATE editorial_draft SET "
            "product_sku = (SELECT p.sku FROM editorial_product p "
            "WHERE p.id = editorial_draft.product_id), "
            "kind_position = (SELECT k.position FROM editorial_contentkind k "
            "WHERE k.code = editorial_draft.kind_id)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("editorial", "0015_draft_review_figures"),
    ]

    operations = [
        migrations.AddField(
            model_name="draft",
            name="kind_position",
            field=models.PositiveSmallIntegerField(db_default=0, default=0, editable=False),
        ),
        migrations.AddField(
            model_name="draft",
            name="product_sku",
            field=models.CharField(
                blank=True, db_default="", default="", editable=False, max_length=255
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="draft",
            index=models.Index(
                fields=["product_sku", "kind_position", "id"], name="draft_sku_order"
            ),
        ),
    ]
