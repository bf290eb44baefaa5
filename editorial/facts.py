"""Rows to the plain dataclasses the generation core works on (it never sees the ORM)."""

from generation.prompts import BrandRules, KindSpec, ProductFacts

from .models import Brand, ContentKind, Product


def product_facts(product: Product) -> ProductFacts:
    return ProductFacts(
        sku=product.sku,
        title=product.title,
        brand=product.brand.name if product.brand_id else "",
        category=product.category,
        attributes={str(k): str(v) for k, v in (product.attributes or {}).items()},
        source_text=product.source_text,
        locale=product.locale,
    )


def brand_rules(brand: Brand | None) -> BrandRules | None:
    if brand is None:
        return None
    return BrandRules(
        name=brand.name,
        voice=brand.voice,
        audience=brand.audience,
        banned_terms=tuple(brand.banned_terms or ()),
        required_terms=tuple(brand.required_terms or ()),
        length_limits={str(k): int(v) for k, v in (brand.length_limits or {}).items()},
    )


def kind_spec(kind: ContentKind) -> KindSpec:
    return KindSpec(
        code=kind.code, label=kind.label, instructions=kind.instructions, max_chars=kind.max_chars
    )
