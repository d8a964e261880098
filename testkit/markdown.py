"""Reading the docs' Markdown as the tests check it: code blocks, the prose around them, sections."""


def outside_code_blocks(text: str) -> list[str]:
    """The lines of a Markdown text that are not inside ``` blocks."""
    lines, in_block = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_block = not in_block
        elif not in_block:
            lines.append(line)
    return lines


def code_blocks(text: str) -> list[list[str]]:
    """The lines of each ``` block of a Markdown text."""
    blocks, current = [], None
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def section(text: str, title: str) -> str:
    """The `## title` section, its ### subsections included, up to the next `## ` heading."""
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]
