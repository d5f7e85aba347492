"""The single entry for every front end: descriptors, path walk, permissions, caller identity."""
