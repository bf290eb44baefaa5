from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from editorial.catalog import FORMATS, CatalogImportError, products_import


class Command(BaseCommand):
    help = (
        "Import products from a generic CSV, a Shopify product CSV export or a JSON Lines file. "
        "Products are matched by SKU (Shopify: Handle), so importing again updates them. Row "
        "errors go to stderr with their line numbers; the last line of output is "
        "'imported N, updated M, failed K', and the exit status is 1 when K > 0."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The file to import (UTF-8; Excel's 'CSV UTF-8').")
        parser.add_argument(
            "--format", dest="fmt", choices=FORMATS, default="auto",
            help="auto (default): .jsonl/.ndjson are JSON Lines; a CSV whose header has Handle, "
                 "Title and Body (HTML) is a Shopify export; any other CSV is generic.",
        )
        parser.add_argument("--brand", help="Brand for every product (created if new).")
        parser.add_argument(
            "--locale",
            help="Locale for rows without a locale column (en, zh-hans ...); otherwise it is "
                 "detected from the text.",
        )

    def handle(self, *args, file: str, fmt: str, brand: str | None, locale: str | None,
               **options):
        path = Path(file)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CommandError(f"{file}: no such file.") from None
        except IsADirectoryError:
            raise CommandError(f"{file} is a directory, not a file.") from None
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror or exc}.") from None

        try:
            report = products_import(
                data=data, filename=file, fmt=fmt, brand_name=brand, locale=locale
            )
        except CatalogImportError as exc:
            raise CommandError(str(exc)) from None

        for notice in report.notices:
            self.stdout.write(notice)
        for error in report.errors:
            self.stderr.write(str(error))
        self.stdout.write(report.summary())
        if report.failed:
            rows = "row" if report.failed == 1 else "rows"
            raise CommandError(f"{report.failed} {rows} of {file} could not be imported.")
