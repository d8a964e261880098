"""Damage to a file's bytes, drawn by hypothesis: what the fuzz tests do to valid files."""

from hypothesis import strategies as st

BYTE_EDITS = ("overwrite", "truncate", "delete", "insert")


def edit_bytes(draw, data: bytearray, kind: str, at: int) -> None:
    """One of BYTE_EDITS at `at`, drawing what it needs: a byte overwritten, the rest cut off,
    up to 64 bytes cut out, or up to 16 inserted."""
    if kind == "overwrite" and data:
        data[at] = draw(st.integers(0, 255))
    elif kind == "truncate":
        del data[at:]
    elif kind == "delete":
        del data[at : at + draw(st.integers(1, 64))]
    elif kind == "insert":
        data[at:at] = draw(st.binary(min_size=1, max_size=16))
