"""The FUSE protocol and its transports (/dev/fuse, virtio-fs)."""
