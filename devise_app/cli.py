"""The ``devise-app`` command: no arguments opens the GUI; subcommands work in a terminal.

Everything here is a thin face over ``devise_app.engine.search.Library`` (the GUI is the
other). Heavy modules (numpy, Pillow, ONNX Runtime, Annoy, Qt) are imported
inside the commands, so ``--help`` answers at once.

Errors the user can act on (a bad query, a missing folder or library, broken
model files, an unreadable photo, Ctrl+C) end with one line on stderr and a
non-zero exit status, never a traceback:

- 1: the command failed (or, for ``search``, at least one query could not be answered)
- 2: wrong usage (argparse)
- 130: interrupted
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shlex
import sys
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from devise_app import __version__
from devise_app.engine.errors import UserError
from devise_app.logs import setup_logging

if TYPE_CHECKING:
    from devise_app.engine.indexer import IndexProgress, IndexSummary
    from devise_app.engine.search import Library, PhotoFilter, PhotoInfo, SearchHit, Suggestion
    from devise_app.engine.watch import WatchRun

PROG = "devise-app"
log = logging.getLogger(__name__)
SHOWN_SKIPPED = 20  # skipped files listed by name after an index run
MAX_TOP = 100_000  # --top; a larger one asked Annoy for an array of that many results


def _is_user_error(exc: BaseException) -> bool:
    if isinstance(exc, UserError):
        return True
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and (
        isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError
    ):
        return True  # locked, unreadable or damaged catalog
    return isinstance(exc, OSError)  # disk full, permissions, ...


# Control characters (a file named with a terminal escape sequence) and lone
# surrogates (a name that is not valid UTF-8) never reach the terminal raw.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _counted(count: int, noun: str) -> str:
    """A count and its noun: "1 label", "2 labels"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _shown(value: object) -> str:
    """``value`` as text that is safe to print on a terminal: unprintable characters escaped."""
    return _UNPRINTABLE.sub(
        lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", str(value)
    )


def _fail(message: object) -> None:
    print(f"{PROG}: error: {_shown(message)}", file=sys.stderr)


# -- output helpers -----------------------------------------------------------------


def _hits_json(hits: Sequence[SearchHit]) -> list[dict[str, object]]:
    """Each hit's path and score; "copies" too for a photo held more than once (exact copies show once)."""
    return [
        {
            "path": str(hit.path),
            "score": round(hit.score, 4),
            **({"copies": hit.copies} if hit.copies > 1 else {}),
        }
        for hit in hits
    ]


def _suggestion_json(suggestion: Suggestion) -> dict[str, object]:
    """A word for a photo; a label of the library also keeps the ``label:NAME`` query form
    in "word", as before, and its bare name in "label"."""
    if suggestion.is_label:
        from devise_app.engine.query import label_query

        word = label_query(suggestion.text)
        return {"word": word, "score": round(suggestion.score, 4), "label": suggestion.text}
    return {"word": suggestion.text, "score": round(suggestion.score, 4)}


def _print_json(obj: dict[str, object]) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def _print_hits(title: str, hits: Sequence[SearchHit], good: int | None = None) -> None:
    """A result table; with ``good``, a line marks where the good matches end."""
    print(_shown(title))
    if not hits:
        print("  (no photos)")
    elif good == 0:
        print("  (no good matches; the nearest photos:)")
    for number, hit in enumerate(hits):
        if good and number == good:
            print("  (weaker matches:)")
        copies = f"  ({hit.copies} copies)" if hit.copies > 1 else ""
        print(f"  {hit.score:6.3f}  {_shown(hit.path)}{copies}")


def _duration(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class _ProgressPrinter:
    """A one-line progress bar on a terminal; an occasional plain line elsewhere."""

    WIDTH = 24

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.interval = 0.1 if self.tty else 10.0
        self.last = 0.0 if self.tty else time.monotonic()  # plain lines only for long runs
        self.shown = False

    def update(self, progress: IndexProgress) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        if progress.phase == "scanning":
            line = f"scanning… {progress.total} photos found"
        else:
            share = progress.done / progress.total if progress.total else 1.0
            eta = f"  ETA {_duration(progress.eta)}" if progress.eta is not None else ""
            line = f"{progress.done}/{progress.total} ({share:.0%}){eta}"
            if self.tty:
                filled = int(share * self.WIDTH)
                line = f"[{'#' * filled}{'-' * (self.WIDTH - filled)}] {line}"
        if self.tty:
            name = _shown(progress.current.name) if progress.current else ""
            self.stream.write(f"\r\x1b[K{line}  {name}"[:200])
            self.shown = True
        else:
            self.stream.write(f"indexing: {line}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _print_summary(summary: IndexSummary, photo_count: int) -> None:
    state = "Stopped" if summary.cancelled else "Done"
    print(f"{state} in {_duration(summary.elapsed)}; the library holds {photo_count} photos.")
    rows = [
        ("indexed", summary.indexed),
        ("unchanged", summary.unchanged),
        ("moved", summary.moved),
        ("removed", summary.removed),
        ("skipped", len(summary.skipped)),
    ]
    for name, count in rows:
        print(f"  {name:<10} {count:>7}")
    for reason, count in summary.skipped_reasons().most_common():
        print(f"    {count:>5}  {_shown(reason)}")
    if summary.skipped:
        print("Skipped files:")
        for item in summary.skipped[:SHOWN_SKIPPED]:
            print(f"  {_shown(item.path)}: {_shown(item.reason)}")
        if len(summary.skipped) > SHOWN_SKIPPED:
            print(f"  … and {len(summary.skipped) - SHOWN_SKIPPED} more")
    if summary.cancelled:
        print("Run the same command again to finish.")


# -- commands -------------------------------------------------------------------------


def _library(args: argparse.Namespace, create: bool = False) -> Library:
    from devise_app.engine.search import Library

    return Library(args.library, create=create)


def _index_run(library: Library, args: argparse.Namespace) -> Generator[IndexProgress, None, None]:
    """The run ``--engine`` asks for: this machine's pipeline, or Ray's (``engine.cluster``)."""
    if args.engine == "ray":
        from devise_app.engine.cluster import RayOptions, index_on_ray

        return index_on_ray(library, args.folders, RayOptions(address=args.address))
    if args.address is not None:
        raise UserError("--address is for --engine ray")
    return library.index(args.folders)


def cmd_index(args: argparse.Namespace) -> int:
    with _library(args, create=True) as library:
        printer = _ProgressPrinter(sys.stderr)
        progress_items = _index_run(library, args)
        try:
            last = None
            for last in progress_items:
                printer.update(last)
        except KeyboardInterrupt:
            printer.close()
            print(f"{PROG}: interrupted; what was indexed is kept, run again to finish", file=sys.stderr)
            return 130
        else:
            printer.close()
        finally:
            progress_items.close()
        assert last is not None and last.summary is not None
        _print_summary(last.summary, library.photo_count())
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from devise_app.engine.query import QueryError

    failed = 0
    with _library(args) as library:
        for query in args.queries:
            try:
                found = library.find(query, args.top, _filters(args), read_typos=not args.as_typed)
            except QueryError as exc:
                failed += 1
                if args.json:
                    _print_json({"query": query, "error": str(exc)})
                else:
                    _fail(f"{query!r}: {exc}")
                continue
            if args.json:
                answer: dict[str, object] = {
                    "query": query,
                    "results": _hits_json(found.hits),  # every photo up to --top, good or not
                    "good_matches": found.good,  # how many of the leading results are good matches
                }
                if found.nearest_words:
                    answer["nearest_words"] = found.nearest_words
                if found.without:
                    answer["without"] = found.without
                if found.labels:
                    answer["labels"] = found.labels
                if found.ignored_words or found.corrected:  # scripts reading "results" are unaffected
                    # every word the model does not know; a typo read as another word says which
                    answer["ignored"] = [
                        *(
                            {"word": w, "suggestions": [meant], "read_as": meant}
                            for w, meant in found.corrected
                        ),
                        *({"word": w, "suggestions": s} for w, s in found.ignored_words),
                    ]
                _print_json(answer)
            else:
                for word, meant in found.corrected:
                    print(
                        f"{PROG}: note: {_shown(query)!s}: unknown word {_shown(word)!r} read as {meant!r}",
                        file=sys.stderr,
                    )
                for word, suggestions in found.ignored_words:
                    hint = f" (did you mean {', '.join(suggestions[:3])}?)" if suggestions else ""
                    print(
                        f"{PROG}: note: {_shown(query)!s}: unknown word {_shown(word)!r} left out{hint}",
                        file=sys.stderr,
                    )
                near = f"  (≈ {', '.join(found.nearest_words)})" if found.nearest_words else ""
                without = f"  (ranked lower: {', '.join(found.without)})" if found.without else ""
                labels = f"  (labels: {', '.join(found.labels)})" if found.labels else ""
                _print_hits(query + near + without + labels, found.hits, found.good)
    return 1 if failed else 0


def cmd_similar(args: argparse.Namespace) -> int:
    with _library(args) as library:
        hits = library.similar(args.photo, args.top)
    if args.json:
        _print_json({"photo": str(args.photo.absolute()), "results": _hits_json(hits)})
    else:
        _print_hits(f"Photos like {args.photo}", hits)
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    with _library(args) as library:  # its labels are suggested too, when the library exists
        suggestions = library.describe(args.photo, args.top)
    if args.json:
        _print_json(
            {"photo": str(args.photo.absolute()), "words": [_suggestion_json(s) for s in suggestions]}
        )
    else:
        print(f"Words for {_shown(args.photo)}")
        for suggestion in suggestions:
            mark = "  (your label)" if suggestion.is_label else ""
            print(f"  {suggestion.score:6.3f}  {_shown(suggestion.text)}{mark}")
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    if args.action in ("add", "remove") and not (args.name and args.photos):
        _fail(f"label {args.action} needs a NAME and at least one PHOTO")
        return 2
    if args.action == "import" and not args.name:
        _fail("label import needs a FILE (an export of label export)")
        return 2
    with _library(args) as library:
        if args.action == "list":
            _print_labels(library.labels(), args.json)
        elif args.action == "add":
            library.add_label(args.name, args.photos)
        elif args.action == "remove":
            library.remove_label(args.name, args.photos)
        elif args.action == "export":
            if args.name:
                library.export_labels_to(Path(args.name))
            else:
                sys.stdout.write(json.dumps(library.export_labels(), indent=2, ensure_ascii=False) + "\n")
        else:
            applied, missing = library.import_labels(Path(args.name).read_bytes())
            elsewhere = _counted(len(missing), "photo")
            print(f"imported {_counted(applied, 'label')}; {elsewhere} not in this library")
            for path in missing[:SHOWN_SKIPPED]:
                print(f"  not found: {_shown(path)}")
    return 0


def _print_labels(labels: list[tuple[str, int]], as_json: bool) -> None:
    if as_json:
        _print_json({"labels": [{"name": name, "photos": count} for name, count in labels]})
        return
    for name, count in labels:
        print(f"{count:>7}  {_shown(name)}")
    if not labels:
        print("(no labels)")


def cmd_learn(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    with _library(args) as library:
        head_before = library.head_in_use()
        steps = library.learn()
        try:
            last = None
            for last in steps:
                if sys.stderr.isatty():
                    print(
                        f"\rlearning: step {last.step}/{last.steps}, loss {last.loss:.4f}",
                        end="",
                        file=sys.stderr,
                        flush=True,
                    )
        except KeyboardInterrupt:
            if library.head_in_use() == head_before:
                print(f"\n{PROG}: interrupted; the library is unchanged", file=sys.stderr)
            else:  # the commit was done: what was learned is in use
                print(f"\n{PROG}: interrupted after learning; the labels are learned", file=sys.stderr)
            return 130
        finally:
            steps.close()
        if sys.stderr.isatty():
            print(file=sys.stderr)
        assert last is not None and last.result is not None
        names, photos = last.result.label_names, library.photo_count()
    seconds = round(time.perf_counter() - started, 1)
    if args.json:
        _print_json({"labels": names, "photos": photos, "seconds": seconds})
    else:
        print(
            f"learned {_counted(len(names), 'label')} ({_shown(', '.join(names))}); "
            f"{_counted(photos, 'photo')} re-projected "
            f"and the search index rebuilt in {seconds} s"
        )
    return 0


def _follow(progress_items: Generator[IndexProgress, None, None]) -> IndexSummary | None:
    """Run an index run to its end with a progress line on stderr; None if interrupted."""
    printer = _ProgressPrinter(sys.stderr)
    try:
        last = None
        for last in progress_items:
            printer.update(last)
    except KeyboardInterrupt:
        printer.close()
        print(f"{PROG}: interrupted; what was indexed is kept, run again to finish", file=sys.stderr)
        return None
    finally:
        progress_items.close()
    printer.close()
    assert last is not None and last.summary is not None
    return last.summary


def cmd_rescan(args: argparse.Namespace) -> int:
    with _library(args) as library:
        folders = library.folders()
        for folder in folders:
            if not folder.is_dir():
                print(f"not there (its photos are kept): {_shown(folder)}")
        summary = _follow(library.rescan())
        if summary is None:
            return 130
        _print_summary(summary, library.photo_count())
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    with _library(args) as library:
        report = library.check(repair=args.repair)
    if args.json:
        findings = [asdict(finding) for finding in report.findings]
        _print_json({"photos": report.photos, "vectors": report.vectors, "labels": report.labels,
                     "sound": report.sound, "findings": findings})  # fmt: skip
        return 0 if report.sound else 1
    print(
        f"checked {_counted(report.photos, 'photo')} ({_counted(report.vectors, 'stored vector')}), "
        f"{_counted(report.labels, 'label')}, "
        "the catalog's integrity and the search index"
    )
    for finding in report.findings:
        print(f"  {finding.part}: {finding.count} × {finding.problem}")
        if finding.hint and not finding.repaired:
            print(f"    {finding.hint}")
    if not report.findings:
        print("the library is sound")
    elif report.sound:
        print("repaired: the library is sound now")
    else:
        unmended = "run with --repair to mend it" if not args.repair else "see above for what to do"
        print(f"the library is damaged: {unmended}")
    return 0 if report.sound else 1


def cmd_remove(args: argparse.Namespace) -> int:
    with _library(args) as library:
        folders = [path for path in args.paths if path.is_dir()]
        photos = [path for path in args.paths if not path.is_dir()]
        removed = sum(library.remove_folder(folder, trash=args.trash) for folder in folders)
        if photos:
            removed += library.remove_photos(photos, trash=args.trash)
    where = " and moved to the trash" if args.trash else ""
    print(f"removed {removed} photos from the library{where}")
    return 0


def cmd_exclude(args: argparse.Namespace) -> int:
    with _library(args) as library:
        if not args.folders:
            for path in library.excluded():
                print(_shown(path))
            return 0
        for folder in args.folders:
            if args.undo:
                library.include(folder)
                print(f"{_shown(folder)} is back in the library from the next rescan")
            else:
                removed = library.exclude_folder(folder)
                print(f"excluded {_shown(folder)} ({removed} photos removed from the library)")
    return 0


def _when(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date such as 2024-07-14, got {text!r}") from None


def _photo_json(photo: PhotoInfo) -> dict[str, object]:
    return {
        "path": str(photo.path),
        "taken": photo.taken.isoformat(timespec="seconds"),
        "copies": photo.copies,
    }


def _filters(args: argparse.Namespace) -> PhotoFilter | None:
    """What --folder, --label, --since and --until ask for; None when none is given."""
    from devise_app.engine.search import PhotoFilter

    filters = PhotoFilter(args.folder, args.since, args.until, args.label)
    return None if filters.is_empty() else filters


def cmd_browse(args: argparse.Namespace) -> int:
    with _library(args) as library:
        photos = library.browse(args.sort, _filters(args), args.top)
    if args.json:
        _print_json({"sort": args.sort, "photos": [_photo_json(photo) for photo in photos]})
        return 0
    for photo in photos:
        copies = f"  ({photo.copies} copies)" if photo.copies > 1 else ""
        print(f"{photo.taken:%Y-%m-%d %H:%M}  {_shown(photo.path)}{copies}")
    if not photos:
        print("(no photos)")
    return 0


def cmd_duplicates(args: argparse.Namespace) -> int:
    with _library(args) as library:
        groups = library.duplicates(near=not args.exact)
    if args.json:
        for group in groups:
            _print_json(
                {
                    "kind": "exact" if group.exact else "near",
                    "similarity": group.similarity,
                    "photos": [_photo_json(photo) for photo in group.photos],
                }
            )
        return 0
    for group in groups:
        if group.exact:
            print(f"{len(group.photos)} identical copies:")
        else:
            print(f"{len(group.photos)} near-duplicates (similarity at least {group.similarity:.2f}):")
        for photo in group.photos:
            copies = f"  ({photo.copies} copies)" if photo.copies > 1 and not group.exact else ""
            print(f"  {_shown(photo.path)}{copies}")
    if not groups:
        print("(no duplicates)")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from devise_app.engine.watch import FolderWatcher

    with _library(args, create=True) as library:
        watcher = FolderWatcher(library, args.folders, quiet=args.quiet, on_run=_print_watch_run)
        watcher.start()
        print(f"watching {', '.join(_shown(f) for f in watcher.folders)}; Ctrl+C to stop", file=sys.stderr)
        try:
            while True:
                time.sleep(3600)  # the watcher works on its own threads; this one only waits for Ctrl+C
        except KeyboardInterrupt:
            print(f"{PROG}: stopped watching", file=sys.stderr)
        finally:
            watcher.stop()
    return 0


def _print_watch_run(run: WatchRun) -> None:
    stamp = time.strftime("%H:%M:%S")
    for folder in run.missing:
        print(f"{stamp}  not there (its photos are kept): {_shown(folder)}", flush=True)
    if run.error is not None:
        print(f"{stamp}  {PROG}: error: {_shown(run.error)}", flush=True)
    summary = run.summary
    if summary is None or not (summary.indexed or summary.moved or summary.removed or summary.skipped):
        return
    print(
        f"{stamp}  {summary.indexed} indexed, {summary.moved} moved, {summary.removed} removed, "
        f"{len(summary.skipped)} skipped",
        flush=True,
    )


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "learn":
        from devise_app.bench.learn import main as bench_learn

        return bench_learn(args.images)
    if args.what == "speed":
        from devise_app.bench.speed import main as bench_speed

        return bench_speed(args.images)
    if args.what == "index":
        from devise_app.bench.index import main as bench_index

        return bench_index(args.images)
    if args.what == "cluster":
        from devise_app.bench.cluster import main as bench_cluster

        return bench_cluster(args.images)
    from devise_app.bench.quality import main as bench_quality

    return bench_quality(args.images)


def open_gui() -> int:
    from devise_app.gui.app import main as gui_main

    return int(gui_main() or 0)


# -- argument parsing ---------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    if value > MAX_TOP:
        raise argparse.ArgumentTypeError(f"at most {MAX_TOP} results can be asked for, not {value}")
    return value


class _CommandParser(argparse.ArgumentParser):
    """A command's parser that takes its options anywhere among its arguments, as
    users type them: ``label add --library L Grandma a.jpg`` (argparse alone gives
    the label and its photos out before the option, then refuses the rest). After
    ``--`` everything is an argument, as usual (``search -- -dog``)."""

    _parsing = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._parsing or "--" in (args or ()):
            return super().parse_known_args(args, namespace)
        self._parsing = True  # the intermixed parse calls back in here (Python 3.11, 3.12)
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._parsing = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Search your own photos by meaning. Without a command, opens the app's window.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_CommandParser)

    library = _CommandParser(add_help=False)
    library.add_argument(
        "--library", type=Path, metavar="DIR", help="the library folder (default: the per-user one)"
    )
    output = _CommandParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print one JSON object per line")
    narrow = _CommandParser(add_help=False)
    narrow.add_argument("--folder", type=Path, metavar="F", help="only photos in this folder (and below)")
    narrow.add_argument("--label", metavar="L", help="only photos carrying this label")
    narrow.add_argument(
        "--since", type=_when, metavar="DATE", help="only photos taken on or after (2024-07-14)"
    )
    narrow.add_argument("--until", type=_when, metavar="DATE", help="only photos taken before")

    def command(
        name: str,
        func: Callable[[argparse.Namespace], int],
        help: str,
        parents: Iterable[_CommandParser],
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, parents=list(parents))
        sub.set_defaults(func=func)
        return sub

    sub = command(
        "index", cmd_index, "add folders of photos to the library, or bring it up to date", [library]
    )
    sub.add_argument("folders", nargs="+", type=Path, metavar="FOLDER")
    sub.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: this process (default); ray: decode and embed on a Ray cluster "
        "(needs devise-app[cluster])",
    )
    sub.add_argument(
        "--address",
        metavar="ADDR",
        help="with --engine ray: the cluster to use (host:port, ray://host:port or auto); "
        "default: a private Ray on this machine, on 127.0.0.1 only",
    )

    sub = command(
        "search",
        cmd_search,
        "find photos by meaning: words, word arithmetic (king - man + woman) or label:NAME",
        [library, output, narrow],
    )
    sub.add_argument("queries", nargs="+", metavar="QUERY", help="each argument is one query")
    sub.add_argument("--top", type=_positive, default=20, metavar="K", help="results per query (default 20)")
    sub.add_argument(
        "--as-typed",
        action="store_true",
        help="read no typos as other words: a word the model does not know is set aside (default: "
        "'dgo' is read as 'dog', and a note says so)",
    )
    sub.epilog = (
        'With --json, one line per query: {"query": ..., "results": [{"path": ..., "score": ...}]}, '
        'or {"query": ..., "error": ...} for a query that cannot be answered. '
        "Exit status 1 if any query failed."
    )

    sub = command("similar", cmd_similar, "find photos like a given photo", [library, output])
    sub.add_argument("photo", type=Path, metavar="PHOTO")
    sub.add_argument("--top", type=_positive, default=20, metavar="K", help="number of photos (default 20)")

    sub = command(
        "describe",
        cmd_describe,
        "the words nearest to a photo (needs no library; a library's own labels are suggested too)",
        [library, output],
    )
    sub.add_argument("photo", type=Path, metavar="PHOTO")
    sub.add_argument("--top", type=_positive, default=10, metavar="K", help="number of words (default 10)")

    sub = command(
        "label",
        cmd_label,
        "put labels on photos, take them off, list, export or import them",
        [library, output],
    )
    sub.add_argument("action", choices=["add", "remove", "list", "export", "import"])
    sub.add_argument(
        "name", nargs="?", metavar="NAME", help="the label (add, remove) or FILE (export, import)"
    )
    sub.add_argument("photos", nargs="*", type=Path, metavar="PHOTO")

    sub = command("learn", cmd_learn, "teach the library's own head from its labels", [library, output])

    sub = command(
        "browse",
        cmd_browse,
        "list the library's photos without a query, newest first (exact copies once)",
        [library, output, narrow],
    )
    sub.add_argument("--sort", choices=["date", "name"], default="date", help="date taken (default) or name")
    sub.add_argument("--top", type=_positive, metavar="K", help="at most K photos (default: all)")

    sub = command("rescan", cmd_rescan, "bring the library up to date with all its folders", [library])

    sub = command(
        "check",
        cmd_check,
        "look for damage in the library (catalog, stored vectors, learned head, search index)",
        [library, output],
    )
    sub.add_argument("--repair", action="store_true", help="mend what can be mended, and say what was")
    sub.epilog = "Exit status 0 if the library is sound (or was mended), 1 if damage remains."

    sub = command(
        "remove",
        cmd_remove,
        "take photos or folders out of the library (the files stay unless --trash)",
        [library],
    )
    sub.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    sub.add_argument("--trash", action="store_true", help="also move the files to the system trash")

    sub = command(
        "exclude",
        cmd_exclude,
        "keep sub-folders out of the library (rescans skip them); no FOLDER: list them",
        [library],
    )
    sub.add_argument("folders", nargs="*", type=Path, metavar="FOLDER")
    sub.add_argument("--undo", action="store_true", help="let the folders back in")

    sub = command(
        "duplicates",
        cmd_duplicates,
        "identical copies and near-duplicates (re-saved, resized, cropped) in the library",
        [library, output],
    )
    sub.add_argument("--exact", action="store_true", help="only identical copies")

    sub = command(
        "watch",
        cmd_watch,
        "keep the library up to date with folders while they change, until Ctrl+C",
        [library],
    )
    sub.add_argument("folders", nargs="+", type=Path, metavar="FOLDER")
    sub.add_argument(
        "--quiet", type=float, default=1.5, metavar="S", help="index after S seconds without changes (1.5)"
    )

    sub = command(
        "bench",
        cmd_bench,
        "measure indexing speed (index), search quality (quality), learning from labels (learn), "
        "speed and scale against targets (speed) or the Ray engine (cluster)",
        [],
    )
    sub.add_argument("what", choices=["index", "quality", "learn", "speed", "cluster"])
    sub.add_argument(
        "--images", type=Path, metavar="DIR", help="photos to measure on (default: the ImageNet sample)"
    )
    return parser


def _tolerant_output() -> None:
    """Let stdout and stderr show any file name. A name that is not valid UTF-8
    reaches Python with surrogate escapes, and a stream with ``errors="strict"``
    (a UTF-8 locale other than C.UTF-8, PYTHONIOENCODING, Windows) raised on it."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict":
            reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    setup_logging()  # to the log file only: the terminal shows nothing extra
    log.info("%s %s: %s", PROG, __version__, shlex.join(args_list) or "(the window)")
    try:
        if not args_list:
            return open_gui()
        _tolerant_output()
        parser = build_parser()
        args = parser.parse_args(args_list)
        if not hasattr(args, "func"):
            parser.print_help()
            return 2
        return int(args.func(args))
    except KeyboardInterrupt:
        log.info("interrupted")
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`): nothing more to say
        return 1
    except Exception as exc:
        if not _is_user_error(exc):
            log.exception("unexpected error")
            raise
        log.warning("error shown to the user: %s", exc)
        _fail(exc)
        return 1
