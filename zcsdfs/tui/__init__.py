"""The rich terminal inspector."""
