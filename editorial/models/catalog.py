"""What the shop sells and what copy it needs: brands, content kinds, products, imports."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Locale(models.TextChoices):
    EN = "en", _("English")
    ZH_HANS = "zh-hans", _("Chinese (Simplified)")



class Brand(models.Model):
    name = models.CharField(max_length=200, unique=True)
    voice = models.TextField(blank=True, help_text=_("How the brand sounds, in a few sentences."))
    audience = models.CharField(max_length=300, blank=True)
    locale = models.CharField(max_length=10, choices=Locale.choices, default=Locale.EN)
    banned_terms = models.JSONField(default=list, blank=True)
    required_terms = models.JSONField(default=list, blank=True)
    # {"description": 600, "title": 70, ...}: maximum characters per content kind code.
    length_limits = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name



class ContentKind(models.Model):
    """What a draft is: description, title, bullets ... Admins can add their own kinds."""

    code = models.SlugField(max_length=40, primary_key=True)
    label = models.CharField(max_length=100)
    instructions = models.TextField(
        help_text=_("The task given to the model for this kind (English; the prompt adds the "
                    "output language).")
    )
    max_chars = models.PositiveIntegerField(default=1000)
    max_new_tokens = models.PositiveIntegerField(default=200)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return str(self.display_label)

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "position" in update_fields:
            # Drafts keep their kind's position for the queue's order.
            self.drafts.exclude(kind_position=self.position).update(
                kind_position=self.position)

    @property
    def display_label(self):
        """The label in the reader's language: a kind the desk ships with is translated while
        its label is the shipped one; an admin's own kind, or a renamed one, shows as stored."""
        shipped = SHIPPED_KIND_LABELS.get(self.code)
        if shipped is not None and shipped[0] == self.label:
            return shipped[1]
        return self.label



# The labels migration 0002 seeds, each with its translation. The English is spelled twice
# because makemessages only finds literal strings in the translation call.
SHIPPED_KIND_LABELS = {
    "description": ("Description", pgettext_lazy("content kind", "Description")),
    "title": ("Title", pgettext_lazy("content kind", "Title")),
    "bullets": ("Bullet points", pgettext_lazy("content kind", "Bullet points")),
    "slogan": ("Slogan / ad line", pgettext_lazy("content kind", "Slogan / ad line")),
    "faq": ("FAQ", pgettext_lazy("content kind", "FAQ")),
    "seo_title": ("SEO title", pgettext_lazy("content kind", "SEO title")),
    "seo_description": ("SEO meta description",
                        pgettext_lazy("content kind", "SEO meta description")),
}



class Product(models.Model):
    class SourceFormat(models.TextChoices):
        CSV = "csv", "CSV"
        SHOPIFY = "shopify", "Shopify CSV"
        JSONL = "jsonl", "JSON Lines"
        API = "api", "API"
        MANUAL = "manual", _("Manual")

    sku = models.CharField(max_length=255, unique=True, verbose_name="SKU / handle")
    title = models.CharField(max_length=500)
    brand = models.ForeignKey(
        Brand, null=True, blank=True, on_delete=models.SET_NULL, related_name="products"
    )
    category = models.CharField(max_length=200, blank=True, db_index=True)
    attributes = models.JSONField(default=dict, blank=True)
    source_text = models.TextField(blank=True)
    locale = models.CharField(max_length=10, choices=Locale.choices, default=Locale.EN)
    source_format = models.CharField(
        max_length=10, choices=SourceFormat.choices, default=SourceFormat.MANUAL
    )
    # What the shop sent, so an export can hand it back unchanged but for the new copy:
    # {"columns": [...], "rows": [[...], ...]}. Lists, because jsonb does not keep key order.
    raw = models.JSONField(default=dict, blank=True)
    # The catalog file that last wrote this product (and its raw row); None for products made
    # by hand, through the API, or imported before imports were recorded.
    catalog_import = models.ForeignKey(
        "CatalogImport", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="products", verbose_name=_("import"),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.sku} — {self.title}"

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        update_fields = kwargs.get("update_fields")
        if update_fields is None or not {"sku", "title", "brand"}.isdisjoint(update_fields):
            # Drafts keep their product's SKU, title and brand for the queue.
            self.drafts.all().refresh_copied()



class CatalogImport(models.Model):
    """One catalog file imported: its name, format and column row, who and when. An export can
    take the products of one import, and a Shopify export names its files after them."""

    filename = models.CharField(max_length=255)
    format = models.CharField(max_length=10, choices=Product.SourceFormat.choices)
    # The file's column row (CSV and Shopify), as sent; [] for JSON Lines.
    columns = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        when = timezone.localtime(self.created_at).strftime("%Y-%m-%d %H:%M")
        return f"{self.filename} ({when})"

