import json
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from editorial.catalog import CatalogImportError, products_import
from editorial.examples import house_examples, house_examples_path
from editorial.models import Brand
from editorial.policies import ADMIN, EDITOR, REVIEWER

DEMO_DIR = Path(settings.BASE_DIR) / "data" / "demo"
DEMO_USERS = [
    # username, role, staff (may use the Django admin), superuser
    ("editor", EDITOR, False, False),
    ("reviewer", REVIEWER, True, False),
    ("admin", ADMIN, True, True),
]


class Command(BaseCommand):
    help = ("Load the demo brands and catalog, check the house examples and create demo users "
            "(editor, reviewer, admin).")

    def add_arguments(self, parser):
        parser.add_argument("--catalog", default=str(DEMO_DIR / "catalog.jsonl"))
        parser.add_argument("--brands", default=str(DEMO_DIR / "brands.json"))

    def handle(self, *args, catalog, brands, **options):
        self._load_brands(Path(brands))
        path = Path(catalog)
        try:
            report = products_import(data=path.read_bytes(), filename=path.name)
        except (OSError, CatalogImportError) as exc:
            raise CommandError(f"{path}: {exc}") from exc
        for error in report.errors:
            self.stderr.write(f"{path.name}: line {error.line}: {error.message}")
        self.stdout.write(f"catalog {path.name}: {report.summary()}")
        self._check_house_examples()
        self._create_users()

    def _check_house_examples(self) -> None:
        """The prompts' examples until the shop has approved its own copy: read now, so a broken
        file stops the set-up instead of the first generation job."""
        path = house_examples_path()
        if path is None:
            self.stdout.write("house examples: turned off (COPYDESK_HOUSE_EXAMPLES is empty)")
            return
        try:
            examples = house_examples()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"{path}: {exc}") from exc
        self.stdout.write(f"house examples {path.name}: {len(examples)} loaded")

    def _load_brands(self, path: Path) -> None:
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommandError(f"{path}: {exc}") from exc
        with transaction.atomic():
            for row in rows:
                Brand.objects.update_or_create(
                    name=row["name"],
                    defaults={key: row[key] for key in (
                        "locale", "voice", "audience", "banned_terms", "required_terms",
                        "length_limits") if key in row},
                )
        self.stdout.write(f"brands: {len(rows)} loaded")

    def _create_users(self) -> None:
        """Passwords are random per installation and kept in var/, so a second run prints the
        same ones instead of silently changing them."""
        store = Path(settings.VAR_DIR) / "demo-users.json"
        passwords = json.loads(store.read_text()) if store.exists() else {}
        User = get_user_model()
        for username, role, staff, superuser in DEMO_USERS:
            password = passwords.setdefault(username, secrets.token_urlsafe(9))
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff, user.is_superuser = staff, superuser
            user.set_password(password)
            user.save()
            user.groups.add(Group.objects.get(name=role))
        store.write_text(json.dumps(passwords, indent=2))
        store.chmod(0o600)
        self.stdout.write("demo users (username / password):")
        for username, role, *_ in DEMO_USERS:
            self.stdout.write(f"  {username:<9} {passwords[username]:<14} {role}")
