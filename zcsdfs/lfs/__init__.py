"""The log-structured file system on zones: inodes, extents, log writer, checkpoints, recovery, GC, snapshots."""
