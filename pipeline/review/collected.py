"""The collected digits at two revisions: which a change added, removed and relabelled.

The store (data/collected/<label>/<sha256 of the PNG>.png, pipeline/collect/store.py) is an output
of the collected stage: dvc.lock records it as a .dir object, DVC's listing of its files, kept in
the DVC cache and remote, not in git. A side's listing is
read through DVC's own filesystem, dvc.api.DVCFileSystem at that revision or in the workspace:
from the cache, else from the remote the revision configures. A side that records no store, or
an empty one, has no digits and DVC is not asked; a listing or a digit in neither the cache nor a
remote is an Unavailable saying what to run, never a traceback. A digit's file name is its
content's hash, so the same name under another label at the head is the same image relabelled.
"""

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pipeline.core import artifacts, paths
from pipeline.core.errors import ConfigError
from pipeline.review import gallery, revisions, tables

GALLERY = "collected.png"  # beside report.md
LEGEND = "framed: relabelled, another label at the base"  # below the gallery's rows, when one is
RELABELLED_SHOWN = 20  # lines of the relabelled list; a longer one ends with "and N more"

Listing = frozenset[str]  # paths under data/collected: "<label>/<name>"


@dataclass(frozen=True)
class Unavailable:
    """A listing (or digits) that neither the DVC cache nor a remote gave."""

    what: str  # what is missing, e.g. "its listing (the object `7de9….dir` that `dvc.lock` records)"
    command: str  # what brings it into the cache


@dataclass(frozen=True)
class Record:
    """What a revision records of the store: its .dir object, and where."""

    md5: str  # "7de9….dir"
    nfiles: int | None  # None: not recorded
    where: str  # "dvc.lock"
    update: str  # what records the folder as it is, in Markdown


@dataclass(frozen=True)
class Relabelled:
    name: str  # the file name: the image's sha256
    before: tuple[str, ...]  # its labels at the base
    after: tuple[str, ...]  # and at the head


@dataclass(frozen=True)
class Comparison:
    base: Listing | Unavailable
    head: Listing | Unavailable
    added: tuple[str, ...] = ()  # paths at the head and not at the base, a relabelled digit's too
    removed: tuple[str, ...] = ()
    relabelled: tuple[Relabelled, ...] = ()
    digits: dict[str, bytes] = field(default_factory=dict)  # the added digits to draw, by path
    missing: Unavailable | None = None  # some of those digits were in neither the cache nor a remote
    unrecorded: str = ""  # the workspace's data/collected differs from its record


def label_and_name(path: str) -> tuple[str, str]:
    relative = PurePosixPath(path)
    return relative.parent.as_posix(), relative.name


def label_order(label: str) -> tuple[int, str]:
    """0, 1, ... 9, then any longer label."""
    return len(label), label


def order(path: str) -> tuple[int, str, str]:
    """By label, then file name."""
    label, name = label_and_name(path)
    return *label_order(label), name


def difference(base: Listing, head: Listing) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Relabelled, ...]]:
    """(added, removed, relabelled): paths at one side only, and the file names both sides have
    under different labels."""
    added, removed = sorted(head - base, key=order), sorted(base - head, key=order)
    gained, lost = by_name(added), by_name(removed)
    relabelled = [Relabelled(name, lost[name], gained[name]) for name in sorted(gained.keys() & lost.keys())]
    return tuple(added), tuple(removed), tuple(relabelled)


def by_name(listing: Iterable[str]) -> dict[str, tuple[str, ...]]:
    labels: dict[str, list[str]] = {}
    for path in sorted(listing, key=order):
        label, name = label_and_name(path)
        labels.setdefault(name, []).append(label)
    return {name: tuple(found) for name, found in labels.items()}


def per_label(listing: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in listing:
        label = label_and_name(path)[0]
        counts[label] = counts.get(label, 0) + 1
    return counts


def fetch_command(rev: str | None) -> str:
    """What puts `rev`'s collected digits into the cache. `dvc fetch` takes no revision, but
    every commit's are few: the same image at many commits is one object."""
    if rev is revisions.WORKSPACE:
        return f"dvc fetch {paths.COLLECTED}"
    return f"dvc fetch --all-commits {paths.COLLECTED}"


def record(rev: str | None) -> Record | None:
    """The store's record at `rev`: the collected stage's output in dvc.lock; None without one."""
    try:
        entry = artifacts.lock_entry(revisions.read_text(rev, paths.DVC_LOCK), paths.COLLECTED, str(paths.DVC_LOCK))
    except ConfigError:  # not YAML: no record to read there
        return None
    if entry is None:
        return None
    stage, out = entry
    return _record(out, str(paths.DVC_LOCK), f"`dvc repro` (or `dvc commit {stage}`, without training)")


def _record(out: dict, where: str, update: str) -> Record:
    nfiles = out.get("nfiles")
    return Record(str(out.get("md5", "")), nfiles if isinstance(nfiles, int) else None, where, update)


def listing(rev: str | None, recorded: Record):  # -> (Listing | Unavailable, the DVCFileSystem that read it)
    """The paths `recorded` lists at `rev` (WORKSPACE: dvc.lock on disk, not the folder)."""
    # DVC is imported here, not at the top: a report without collected digits never needs it.
    from dvc.api import DVCFileSystem

    try:
        fs = DVCFileSystem(os.getcwd(), rev=rev)
        found = fs.find(paths.COLLECTED.as_posix(), detail=True)
    except Exception:  # noqa: BLE001 - DVC's own (the .dir is not in the cache) or a remote plugin's (auth, network): the report goes on
        named = f"the object `{recorded.md5}` that `{recorded.where}` records" if recorded.md5 else recorded.where
        return Unavailable(f"its listing ({named})", fetch_command(rev)), None
    prefix = paths.COLLECTED.as_posix() + "/"
    # In the workspace DVC's filesystem shows the files on disk too: keep those the record lists.
    return frozenset(path.removeprefix(prefix) for path, info in found.items() if "dvc_info" in info), fs


def read_digits(rev: str | None, fs, wanted: Iterable[str]) -> tuple[dict[str, bytes], Unavailable | None]:
    """{path: the PNG's bytes} of the `wanted` paths, and an Unavailable if some could not be read."""
    digits, missing = {}, 0
    for path in wanted:
        try:
            digits[path] = fs.read_bytes(f"{paths.COLLECTED.as_posix()}/{path}")
        except Exception:  # noqa: BLE001 - as in listing(): a digit not in the cache nor a remote is one line in the report
            missing += 1
    if not missing:
        return digits, None
    wanted_count = missing + len(digits)
    what = f"all {missing:,} digits to draw" if not digits else f"{missing:,} of the {wanted_count:,} digits to draw"
    return digits, Unavailable(what, fetch_command(rev))


def unrecorded(listed: Listing, recorded: Record | None) -> str:
    """A line if the workspace's data/collected holds other files than its record lists."""
    if not paths.COLLECTED.is_dir():
        return ""  # not checked out: nothing to differ
    # the store writes a digit beside its place as .<random>.tmp first: not a digit yet
    on_disk = {
        file.relative_to(paths.COLLECTED).as_posix()
        for file in paths.COLLECTED.rglob("*")
        if file.is_file() and not file.name.startswith(".")
    }
    where = recorded.where if recorded else str(paths.DVC_LOCK)
    new, gone = len(on_disk - listed), len(listed - on_disk)
    differences = [f"holds {counted(new)} that `{where}` does not record"] if new else []
    differences += [f"lacks {counted(gone)} it records"] if gone else []
    if not differences:
        return ""
    update = recorded.update if recorded else "`dvc repro`"
    return (
        f"`{paths.COLLECTED}` on disk {' and '.join(differences)}: this report reads `{where}`; "
        f"{update} records the folder as it is."
    )


def counted(count: int) -> str:
    """1 digit, 1,200 digits."""
    return f"{count:,} digit" + ("" if count == 1 else "s")


def compare(base_rev: str, head_rev: str | None) -> Comparison | None:
    """The collected digits at both sides and their difference; None if neither has any."""
    records = [record(rev) for rev in (base_rev, head_rev)]
    # no record, or one of an empty store: no digits, and nothing to ask DVC (nor to be missing from its cache)
    (base, _), (head, head_fs) = (
        (frozenset(), None) if recorded is None or recorded.nfiles == 0 else listing(rev, recorded)
        for rev, recorded in zip((base_rev, head_rev), records)
    )
    note = unrecorded(head, records[1]) if head_rev is revisions.WORKSPACE and isinstance(head, frozenset) else ""
    if base == frozenset() and head == frozenset() and not note:
        return None
    if isinstance(base, Unavailable) or isinstance(head, Unavailable):
        return Comparison(base, head, unrecorded=note)
    added, removed, relabelled = difference(base, head)
    digits, missing = read_digits(head_rev, head_fs, [path for row in gallery_paths(added, relabelled) for path in row])
    return Comparison(base, head, added, removed, relabelled, digits, missing, note)


def gallery_paths(added: tuple[str, ...], relabelled: tuple[Relabelled, ...]) -> list[list[str]]:
    """The added paths to draw, a list per label: relabelled first (a reviewer's first suspects),
    then by name; at most gallery.PER_ROW a label."""
    moved = relabelled_paths(relabelled)
    rows: dict[str, list[str]] = {}
    for path in sorted(added, key=lambda path: (path not in moved, order(path))):
        rows.setdefault(label_and_name(path)[0], []).append(path)
    return [rows[label][: gallery.PER_ROW] for label in sorted(rows, key=label_order)]


def relabelled_paths(relabelled: tuple[Relabelled, ...]) -> set[str]:
    """Where the relabelled digits are at the head."""
    return {f"{label}/{item.name}" for item in relabelled for label in item.after}


def draw(comparison: Comparison) -> bytes | None:
    """The gallery PNG of the added digits, a row per label; None if none could be read."""
    if not comparison.digits:
        return None
    moved = relabelled_paths(comparison.relabelled)
    counts = per_label(comparison.added)
    rows = []
    for paths_of_label in gallery_paths(comparison.added, comparison.relabelled):
        label = label_and_name(paths_of_label[0])[0]
        drawn = [path for path in paths_of_label if path in comparison.digits]
        digits = tuple(gallery.Digit(comparison.digits[path], path in moved) for path in drawn)
        rows.append(gallery.Row(label, digits, counts[label] - len(digits)))
    return gallery.draw(rows, LEGEND if moved else "")


def summary(comparison: Comparison, base_label: str, head_label: str, image: str | None) -> str:
    """The Markdown of the section, below its heading: counts per label, relabelled digits, the
    gallery's file, and a line for each side or digit that could not be read."""
    lines = [
        unavailable_line(found, f"`{paths.COLLECTED}` at the {side}, {label}: {found.what} is")
        for side, label, found in (("base", base_label, comparison.base), ("head", head_label, comparison.head))
        if isinstance(found, Unavailable)
    ]
    if comparison.unrecorded:
        lines.append(comparison.unrecorded)
    base, head = comparison.base, comparison.head
    if isinstance(base, Unavailable) or isinstance(head, Unavailable):
        return "\n\n".join(lines)  # nothing to compare
    if not comparison.added and not comparison.removed:
        return "\n\n".join([*lines, f"No digit added or removed: {counted(len(head))} at both sides."])
    lines.append(
        f"**{len(comparison.added):,} added, {len(comparison.removed):,} removed** since the base "
        f"({len(base):,} → {counted(len(head))} in `{paths.COLLECTED}`)."
    )
    lines.append(counts_table(comparison))
    if comparison.relabelled:
        lines.append(relabelled_list(comparison.relabelled))
    if comparison.missing is not None:
        lines.append(unavailable_line(comparison.missing, f"{comparison.missing.what} are"))
    if image is not None:
        lines.append(
            f"The added digits, a row per label: `{image}` beside this report (in the pull request's "
            "`pipeline-report` artifact). Look for one that is not its row's digit."
        )
    return "\n\n".join(lines)


def unavailable_line(found: Unavailable, subject: str) -> str:
    return (
        f"_{subject} in neither the DVC cache nor a remote reached from here: "
        f"run `{found.command}`, then the report again._"
    )


def counts_table(comparison: Comparison) -> str:
    before, after = per_label(comparison.base), per_label(comparison.head)
    added, removed = per_label(comparison.added), per_label(comparison.removed)
    labels = sorted(before.keys() | after.keys(), key=label_order)
    rows = [
        [label, *(f"{counts.get(label, 0):,}" for counts in (before, after, added, removed))]
        for label in labels
        if added.get(label) or removed.get(label)
    ]
    totals = (comparison.base, comparison.head, comparison.added, comparison.removed)
    rows.append(["all", *(f"{len(group):,}" for group in totals)])
    return tables.markdown(["label", "base", "head", "added", "removed"], rows, [False] + [True] * 4)


def relabelled_list(relabelled: tuple[Relabelled, ...]) -> str:
    lines = [
        f"- `{item.name}`: {', '.join(item.before)} → {', '.join(item.after)}" for item in relabelled[:RELABELLED_SHOWN]
    ]
    if len(relabelled) > RELABELLED_SHOWN:
        lines.append(f"- and {len(relabelled) - RELABELLED_SHOWN:,} more")
    heading = (
        f"**Relabelled**: {counted(len(relabelled))}, the same image under another label than at the base "
        "(counted above as removed from the one and added to the other)."
    )
    return heading + "\n\n" + "\n".join(lines)
