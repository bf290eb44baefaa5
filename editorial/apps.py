from django.apps import AppConfig
from django.db.models.signals import post_migrate


class EditorialConfig(AppConfig):
    name = "editorial"
    verbose_name = "Editorial"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Permissions only exist after migrate has created them, so groups are granted theirs
        # here rather than in a data migration.
        from .roles import roles_sync

        post_migrate.connect(roles_sync, sender=self)
        post_migrate.connect(_recount_tallies_after_flush, sender=self)
        # Register the Celery tasks in every process (web included), so the services send them
        # by name (editorial.broker) instead of importing the workers, which call the services.
        from . import workers

        workers.register()


def _recount_tallies_after_flush(sender, using, plan=None, **kwargs) -> None:
    # ``flush`` sends post_migrate without a plan; ``migrate`` always passes one.
    if plan is None:
        from .tallies import recount

        recount(using)
