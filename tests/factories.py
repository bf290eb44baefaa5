import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from editorial.models import Brand, Candidate, ContentKind, Draft, ModelVersion, Product, Revision


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pw-Copydesk-1")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            for name in extracted:
                self.groups.add(Group.objects.get(name=name))
        if create:
            self.save()


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Brand
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Brand {n}")
    voice = "Warm, plain-spoken and practical."
    audience = "Home cooks"
    length_limits = factory.LazyFunction(lambda: {"description": 700, "title": 80})


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    title = factory.Sequence(lambda n: f"Stainless steel kettle {n}")
    brand = factory.SubFactory(BrandFactory)
    category = "kitchen"
    attributes = factory.LazyFunction(
        lambda: {"material": "stainless steel", "capacity": "1.7 L", "power": "2200 W"}
    )
    source_text = "A kettle that boils water quickly."
    locale = "en"


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"model-{n}")
    source = ModelVersion.Source.LOCAL
    path = "/nonexistent"
    status = ModelVersion.Status.READY


def kind(code: str = "description") -> ContentKind:
    return ContentKind.objects.get(code=code)


class DraftFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Draft

    product = factory.SubFactory(ProductFactory)
    kind = factory.LazyFunction(kind)
    state = Draft.State.READY


def draft_with_text(text: str = "A kettle made of stainless steel.", **kwargs) -> Draft:
    """A ready draft whose model revision came from one stored candidate, as after generation."""
    draft = DraftFactory(**kwargs)
    version = ModelVersionFactory(name="factory-model")
    candidate = Candidate.objects.create(
        draft=draft, index=0, text=text, model_version=version,
        prompt=[{"role": "user", "content": "…"}],
    )
    revision = Revision.objects.create(draft=draft, number=1, text=text, candidate=candidate)
    draft.current_revision = revision
    draft.save()
    return draft


def in_review(editor, text: str = "Edited by a person.", **kwargs) -> Draft:
    """A draft ``editor`` saved ``text`` into (over the model's text) and submitted for review;
    ``kwargs`` go to the draft's factory."""
    from editorial import services

    draft = draft_with_text(**kwargs)
    services.revision_save(draft=draft, user=editor, text=text,
                           base_revision_id=draft.current_revision_id)
    services.draft_submit(draft=draft, user=editor)
    draft.refresh_from_db()
    return draft


def approve(draft: Draft, *, editor, reviewer, text: str | None = None) -> Draft:
    """``draft`` taken through review by the services: ``editor`` saves ``text`` as a new
    revision when given, and submits; ``reviewer`` approves the current revision."""
    from editorial import services

    if text is not None:
        draft.refresh_from_db()
        services.revision_save(draft=draft, user=editor, text=text,
                               base_revision_id=draft.current_revision_id)
    draft.refresh_from_db()
    services.draft_submit(draft=draft, user=editor)
    draft.refresh_from_db()
    services.draft_approve(draft=draft, user=reviewer, revision_id=draft.current_revision_id)
    draft.refresh_from_db()
    return draft
