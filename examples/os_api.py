"""The os API: ``import zcsdfs as os`` and use files as with ``os``.

    python examples/os_api.py            # on the embedded default device
    ZCSDFS_DEVICE=/tmp/demo.zns python examples/os_api.py

The default volume is mounted on first use (the device is created and
formatted if it is missing) and checkpointed at exit.
"""

import zcsdfs as os

os.makedirs("/examples", exist_ok=True)
fd = os.open("/examples/hello.txt", os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
os.write(fd, b"hello, zoned world\n")
print(os.pread(fd, 5, 0))                                    # b'hello'
os.close(fd)

with os.io.open("/examples/numbers.csv", "w") as f:         # io.open semantics
    f.writelines(f"{i},{i * i}\n" for i in range(1000))
os.rename("/examples/numbers.csv", "/examples/squares.csv")

for entry in os.scandir("/examples"):
    print(f"{entry.name:12} {entry.stat().st_size:6} bytes")
st = os.statvfs("/")
print(f"volume: {st.f_bfree * st.f_frsize >> 20} MiB free of {st.f_blocks * st.f_frsize >> 20} MiB")
