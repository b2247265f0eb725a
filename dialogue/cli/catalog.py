"""`dialogue catalog show|diff|approve|export|import|check`: author a catalog from the shell."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import CatalogError

ORDER = 40
STATES = ("draft", "approved", "retired", "changed", "unrecorded")


def add(commands) -> None:
    c = commands.add_parser("catalog", help="author catalogs: show, diff, approve, export, import, check",
                            description="Work on a response catalog the way content teams do: review and "
                                        "approve lines by their lock (a hash of text and slots), hand them "
                                        "to translators and voice studios, and check that every locale and "
                                        "recording is current. Edits keep the file's comments and layout.")
    actions = c.add_subparsers(dest="catalog_command", metavar="ACTION")
    for adder in (_add_show, _add_diff, _add_approve, _add_export, _add_import, _add_check):
        adder(actions)
    c.set_defaults(run=lambda args: _usage(c))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _catalog_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("catalog", metavar="CATALOG", help="the catalog .toml file")


# --- show ----------------------------------------------------------------------------------------


def _add_show(actions) -> None:
    p = actions.add_parser("show", help="the lines of a catalog as a table",
                           description="Show every line: id, review state and text (in --locale, when "
                                       "given), with notes on missing or stale translations and recordings. "
                                       "States: draft, approved, retired, changed (edited after approval) "
                                       "and unrecorded (approved without the record the catalog requires).")
    _catalog_arg(p)
    p.add_argument("--locale", metavar="L", help="show the texts in this locale")
    p.add_argument("--status", metavar="S", choices=STATES, help=f"only lines in this state: {', '.join(STATES)}")
    p.set_defaults(run=run_show)


def run_show(args: argparse.Namespace) -> int:
    from ..authoring import CatalogDocument

    document = CatalogDocument.load(args.catalog)
    header = document.header()
    locale = args.locale or header.get("locale")
    if locale not in (header.get("locales") or [header.get("locale")]):
        raise CatalogError(f"catalog {args.catalog} has no locale {locale!r}",
                           hint=f"locales: {', '.join(header.get('locales') or [str(header.get('locale'))])}")
    lines = [line for line in document.responses() if args.status in (None, line["state"])]
    rows = [(str(line["id"]), line["state"], *_text_and_notes(line, locale, header.get("locale"))) for line in lines]
    _print_table(("ID", "STATUS", "TEXT", "NOTES"), rows)
    print(f"{len(rows)} line{'s' * (len(rows) != 1)}" + (f" in state {args.status}" if args.status else ""))
    return 0


def _text_and_notes(line: dict, locale: str, default: str) -> tuple[str, str]:
    notes = []
    if line["state"] == "changed":
        notes.append(f"changed since {line['approval'].get('by')} approved it")
    text, audio_stale = line["text"], line["audio_stale"]
    if locale != default:
        entry = line["translations"].get(locale, {})
        if entry.get("missing", True):
            notes.append(f"no {locale} text")
        elif entry["stale"]:
            notes.append(f"{locale} text stale")
        text, audio_stale = (entry.get("text") or text), entry.get("audio_stale", False)
    if audio_stale:
        notes.append("audio stale")
    return str(text).replace("\n", "\\n"), "; ".join(notes)


def _print_table(head: tuple[str, ...], rows: list[tuple]) -> None:
    widths = [max([len(h)] + [len(str(r[i])) for r in rows]) for i, h in enumerate(head[:-2])]
    for row in [head, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row, widths)] + [str(row[-2])]
        print("  ".join(cells) + (f"  [{row[-1]}]" if row[-1] and row is not head else ""))


# --- diff ----------------------------------------------------------------------------------------


def _add_diff(actions) -> None:
    p = actions.add_parser("diff", help="lines added, removed and changed between two versions",
                           description="Compare two versions of a catalog by response id: lines added, "
                                       "removed and changed, changed words marked [-old-]{+new+} (coloured on "
                                       "a terminal), and the translations and recordings a change makes stale. "
                                       "Each version is a file or a git revision such as "
                                       "HEAD~1:catalogs/blacksmith.toml.")
    p.add_argument("old", metavar="OLD", help="the earlier version: a file, or REV:PATH")
    p.add_argument("new", metavar="NEW", help="the later version: a file, or REV:PATH")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the changed words (default: auto, on a terminal)")
    p.set_defaults(run=run_diff)


def run_diff(args: argparse.Namespace) -> int:
    from ..authoring import diff_catalogs, read_revision

    old, old_name = read_revision(args.old)
    new, new_name = read_revision(args.new)
    diff = diff_catalogs(old, new, old_name, new_name)
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    print(diff.render(color=color) if not diff.empty else "no changes")
    return 0


# --- approve -------------------------------------------------------------------------------------


def _add_approve(actions) -> None:
    p = actions.add_parser("approve", help="record who approved which lines",
                           description="Mark lines approved and record, in each line of the catalog file, "
                                       "who approved it and its lock: approval = { by, lock, at }. A line "
                                       "whose text or slots change afterwards is not approved, and not sent, "
                                       "until it is approved again.")
    _catalog_arg(p)
    p.add_argument("ids", nargs="+", metavar="ID", help="the response ids to approve")
    p.add_argument("--by", required=True, metavar="NAME", help="who reviewed and approved the lines")
    p.set_defaults(run=run_approve)


def run_approve(args: argparse.Namespace) -> int:
    from ..authoring import CatalogDocument

    document = CatalogDocument.load(args.catalog)
    records = document.approve(args.ids, by=args.by)
    document.save()
    for record in records:
        print(f"approved {record['id']} (lock {record['lock']}) by {record['by']}")
    return 0


# --- export and import ---------------------------------------------------------------------------


def _add_export(actions) -> None:
    p = actions.add_parser("export", help="write lines for translators or a voice studio",
                           description="Write the lines for translators (csv, xliff or po: id, source text, "
                                       "context from `when`, slots, character, the existing translation and "
                                       "a stale flag) or a voice script (csv: the text to record per locale, "
                                       "the existing recording and a stale flag). Retired lines are left out.")
    _catalog_arg(p)
    p.add_argument("--for", dest="purpose", choices=("translation", "voice"), default="translation",
                   help="who the file is for (default: translation)")
    p.add_argument("--format", choices=("csv", "xliff", "po"), default="csv", help="file format (default: csv)")
    p.add_argument("--locale", metavar="L", help="only this locale (a PO file holds one)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    from ..authoring import export_catalog
    from ..catalog import Catalog

    text = export_catalog(Catalog.load(args.catalog), args.purpose, args.format, args.locale)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"cannot write {args.output}: {exc}") from None
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _add_import(actions) -> None:
    p = actions.add_parser("import", help="read translations or recordings back into a catalog",
                           description="Apply a translated export (csv, xliff, po) or a voice script with "
                                       "its audio column filled (csv) to the catalog. A row counts where its "
                                       "value changed or its stale flag was cleared; it is recorded as made "
                                       "from the current text. The whole file is refused, with FILE:LINE for "
                                       "each fault, when it would change a source text, names an unknown line "
                                       "or locale, or a translation's placeholders differ from its source's.")
    _catalog_arg(p)
    p.add_argument("file", metavar="FILE", help="the file to import (.csv, .xliff/.xlf or .po)")
    p.add_argument("--format", choices=("csv", "xliff", "po"), help="the file's format (default: from its name)")
    p.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    p.set_defaults(run=run_import)


def run_import(args: argparse.Namespace) -> int:
    from ..authoring import CatalogDocument, import_file

    document = CatalogDocument.load(args.catalog)
    changes = import_file(document, args.file, args.format)
    for change in changes:
        print(f"{change.id} {change.locale} {change.field}: {change.new!r}")
    if changes and not args.dry_run:
        document.save()
    verb = "would change" if args.dry_run else "changed"
    print(f"{verb} {len(changes)} entr{'ies' if len(changes) != 1 else 'y'} of {args.catalog}")
    return 0


# --- check ---------------------------------------------------------------------------------------


def _add_check(actions) -> None:
    p = actions.add_parser("check", help="check that catalogs are ready to ship",
                           description="Check that every locale is complete (each line in use has a text "
                                       "in it), no translation is stale, and, where the catalog declares "
                                       "voice, every approved line has a current recording on disk. Exit 1 "
                                       "and FILE:LINE for each gap.")
    p.add_argument("catalogs", nargs="+", metavar="CATALOG", help="catalog .toml files")
    p.set_defaults(run=run_check)


def run_check(args: argparse.Namespace) -> int:
    from ..authoring import check_catalog

    problems = []
    for catalog in args.catalogs:
        if not Path(catalog).exists():
            raise CatalogError(f"{catalog}: no such file")
        problems += check_catalog(catalog)
    for problem in problems:
        print(problem)
    named = args.catalogs[0] if len(args.catalogs) == 1 else f"{len(args.catalogs)} catalogs"
    if problems:
        print(f"{len(problems)} problem{'s' * (len(problems) != 1)} in {named}")
        return 1
    print(f"{named}: every locale complete and current")
    return 0
