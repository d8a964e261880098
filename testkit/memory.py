"""How much memory a call allocates, for the readers' bounded-memory tests."""

import tracemalloc


def peak_allocation(call) -> int:
    """Peak bytes allocated (Python and numpy) while `call` runs."""
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak
