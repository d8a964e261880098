"""Tables as text: Markdown for reports and READMEs, aligned plain text for a terminal."""

from collections.abc import Sequence


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] = ()) -> str:
    """A GitHub Markdown table; columns flagged in `right` are right-aligned (numbers)."""
    right = list(right) + [False] * (len(header) - len(right))
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---:" if flag else "---" for flag in right) + " |",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def plain(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] = ()) -> str:
    """Columns padded to their widest cell, two spaces apart; `right` columns right-aligned."""
    right = list(right) + [False] * (len(header) - len(right))
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = (cell.rjust(w) if flag else cell.ljust(w) for cell, w, flag in zip(cells, widths, right))
        return "  ".join(padded).rstrip()

    return "\n".join([line(header), *(line(row) for row in rows)])
