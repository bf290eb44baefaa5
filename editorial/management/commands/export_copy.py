import contextlib
import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from editorial.exporters import EXPORT_FORMATS, ArchiveRequired, copy_export
from editorial.services import WorkflowError


class _Stdout:
    """A text stream onto the command's stdout that writes exactly what it is given."""

    def __init__(self, wrapper):
        self._wrapper = wrapper

    def write(self, text: str) -> int:
        self._wrapper.write(text, ending="")
        return len(text)


class Command(BaseCommand):
    help = (
        "Export approved copy (the last approved revision of every draft that has one) as CSV, "
        "JSON Lines or Shopify product CSV, and mark those revisions exported. An --out name "
        "ending in .zip gets a zip: one CSV per Shopify column set."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", dest="fmt", required=True, choices=sorted(EXPORT_FORMATS))
        parser.add_argument("--out", required=True, metavar="FILE",
                            help="file to write (replaced only when the export succeeded); "
                                 "FILE.zip for a zip (Shopify products from files with "
                                 "different columns: one CSV per column set); - for stdout")
        parser.add_argument("--brand", help="only this brand (by name)")
        parser.add_argument("--kind", help="only this content kind (by code)")
        parser.add_argument("--locale", help="only products in this locale")
        parser.add_argument("--import", dest="catalog_import", metavar="ID_OR_FILE",
                            help="only products of this catalog import (its id, or a file "
                                 "name: that file's latest import)")
        parser.add_argument("--changed-only", action="store_true",
                            help="only drafts whose approved revision was not exported yet")
        parser.add_argument("--bom", action="store_true",
                            help="start the CSV with a UTF-8 byte order mark (for Excel)")
        parser.add_argument("--no-formula-guard", action="store_true",
                            help="do not prefix copy starting with = + - @ with a quote "
                                 "(the cells of a shop's own Shopify rows are never changed)")

    def handle(self, *args, fmt, out, brand, kind, locale, catalog_import, bom,
               no_formula_guard, changed_only, **options):
        export = {
            "fmt": fmt,
            "changed_only": changed_only,
            "user": None,
            "filters": {"brand": brand, "kind": kind, "locale": locale,
                        "import": catalog_import},
            "bom": bom,
            "formula_guard": not no_formula_guard,
        }
        try:
            if out == "-":
                batch = copy_export(stream=_Stdout(self.stdout), destination="stdout", **export)
                self.stderr.write(f"exported {batch.count} drafts to stdout")
                return
            path = Path(out).expanduser().resolve()
            batch = self._export_to_file(path, export, archive=path.suffix.lower() == ".zip")
        except ArchiveRequired as exc:
            raise CommandError(f"{exc} Use --out FILE.zip, or --import ID_OR_FILE.") from exc
        except WorkflowError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"exported {batch.count} drafts to {out}")

    def _export_to_file(self, path: Path, export: dict, *, archive: bool):
        """Write next to ``path`` and rename over it at the end, so a failed export leaves no
        half-written file and the old one, if any, in place. The rename happens inside the
        transaction that marks the drafts: if it fails, no draft is marked exported either."""
        if not path.parent.is_dir():
            raise CommandError(f"No such directory: {path.parent}")
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with (open(fd, "wb") if archive
                  else open(fd, "w", encoding="utf-8", newline="")) as stream:

                def finish() -> None:
                    stream.flush()
                    os.fsync(stream.fileno())
                    # mkstemp makes the file private; give it the permissions a new file gets.
                    umask = os.umask(0)
                    os.umask(umask)
                    os.chmod(tmp_name, 0o666 & ~umask)
                    os.replace(tmp_name, path)

                batch = copy_export(stream=stream, destination=str(path), before_commit=finish,
                                    archive=archive, **export)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        return batch
