from django.db import migrations

KINDS = [
    ("description", "Description", 1000, 220,
     "Write the product description: one or two short paragraphs that tell a shopper what the "
     "product is, what it is made of and why it is useful, using only the facts given."),
    ("title", "Title", 80, 40,
     "Write a clear product title of at most 10 words: what it is and its key distinguishing "
     "fact."),
    ("bullets", "Bullet points", 600, 180,
     "Write 4 or 5 short bullet points, one per line starting with '- ', each stating one "
     "concrete benefit or fact from the product data."),
    ("slogan", "Slogan / ad line", 80, 32,
     "Write one short, memorable ad line for this product (one sentence, no hashtags)."),
    ("faq", "FAQ", 1200, 260,
     "Write 3 questions a shopper might ask about this product, each followed by a short answer "
     "based only on the product data. Format: 'Q: ...' then 'A: ...' on the next line."),
    ("seo_title", "SEO title", 60, 32,
     "Write an SEO page title of at most 60 characters containing the product type and brand."),
    ("seo_description", "SEO meta description", 160, 64,
     "Write an SEO meta description of at most 155 characters that summarises the product."),
]

ROLES = ["Editor", "Reviewer", "Admin"]


def seed(apps, schema_editor):
    ContentKind = apps.get_model("editorial", "ContentKind")
    Group = apps.get_model("auth", "Group")
    for position, (code, label, max_chars, max_new_tokens, instructions) in enumerate(KINDS):
        ContentKind.objects.update_or_create(
            code=code,
            defaults={"label": label, "max_chars": max_chars, "max_new_tokens": max_new_tokens,
                      "instructions": instructions, "position": position},
        )
    for name in ROLES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("editorial", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
