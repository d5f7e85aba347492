"""Example CSD kernels in C, with their compiled eBPF objects."""
