"""In-process interposition: unmodified Python code on zcsdfs under a mount prefix (installed as zcsdfs.shim)."""
