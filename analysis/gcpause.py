"""The cyclic garbage collector paused over an analysis (:func:`young_gc`)."""

from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def young_gc():
    """Python's cyclic garbage collector paused, then run on the young generation only. Its
    automatic full passes over every live object (the imported modules' too) cost a tenth of the
    demo's analysis. While it is paused nothing is promoted out of the young generation but by an
    explicit young pass, which promotes only what is still alive: so the young pass at the end
    frees the cycles of all that the block made and dropped since the last such pass
    (figures.draw_standard makes one after each figure, whose closed figures are unreachable by
    then, to bound the memory held). A no-op where the collector is off."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect(0)
