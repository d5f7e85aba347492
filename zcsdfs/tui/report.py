"""What the inspector shows, computed from one snapshot (``zcsdfs.tui.source``): the rows
of each view and the ``--once`` tables. No Textual here, so ``--once`` needs none."""

from __future__ import annotations

import collections

from rich.table import Table

STATE_STYLE = {  # zone state -> (short name, colour)
    "EMPTY": ("E", "grey50"),
    "IMPLICIT_OPEN": ("O", "green"),
    "EXPLICIT_OPEN": ("O", "bright_green"),
    "CLOSED": ("C", "yellow"),
    "FULL": ("F", "blue"),
    "READ_ONLY": ("R", "magenta"),
    "OFFLINE": ("X", "red"),
}
FILL = " ▁▂▃▄▅▆▇█"  # a cell's glyph: how far the write pointer is into the zone


def zone_rows(data: dict, cache: dict | None = None) -> list[dict]:
    """One row per zone: the device's view joined with the log's (valid blocks, role, stream).
    ``cache`` (kept by the caller between snapshots): a zone whose two records are the same
    objects as last time (``zcsdfs.tui.source.PlainMemo``) gets the same row back."""
    lfs = data.get("lfs")
    log = {z["zone"]: z for z in lfs["zone_list"]} if lfs else {}
    rows = []
    for z in data["device"]["zone_list"]:
        extra = log.get(z["index"])
        if cache is not None:
            hit = cache.get(z["index"])
            if hit is not None and hit[0] is z and hit[1] is extra:
                rows.append(hit[2])
                continue
        row = _zone_row(z, extra or {}, lfs is not None)
        if cache is not None:
            cache[z["index"]] = (z, extra, row)
        rows.append(row)
    return rows


def _zone_row(z: dict, extra: dict, lfs: bool) -> dict:
    filled = z["write_pointer"] - z["start"]
    return {"zone": z["index"], "state": z["state"], "write_pointer": z["write_pointer"],
            "filled": min(filled, z["capacity"]), "capacity": z["capacity"],
            "valid": extra.get("valid_blocks"), "pinned": extra.get("pinned_blocks"),
            "role": extra.get("role", "checkpoint" if lfs else None), "stream": extra.get("stream"),
            "blocks_written": z["blocks_written"], "blocks_read": z["blocks_read"],
            "resets": z["resets"], "finishes": z["finishes"]}


def zone_glyph(row: dict) -> str:
    """The cell of a zone: its fill to the write pointer, eighths of the capacity."""
    if not row["capacity"]:
        return FILL[0]
    return FILL[min(8, -(-8 * row["filled"] // row["capacity"]))]


def valid_ratio(row: dict) -> float | None:
    """Valid blocks over written blocks, None where the log says nothing."""
    if row["valid"] is None or not row["filled"]:
        return None
    return min(1.0, row["valid"] / row["filled"])


def file_zones(entry: dict, zone_size: int) -> list[int]:
    zones: set[int] = set()
    for _first, lba, count in entry["extents"]:
        zones.update(range(lba // zone_size, (lba + count - 1) // zone_size + 1))
    return sorted(zones)


def owners_index(files: list[dict], zone_size: int, limit: int = 20) -> dict[int, list[tuple[str, int]]]:
    """Zone -> the files with blocks in it and how many, most first (one pass over every extent:
    taken with the file list, so selecting a zone costs a lookup)."""
    counts: dict[int, dict[str, int]] = {}
    for entry in files:
        path = entry["path"]
        for _first, lba, count in entry["extents"]:
            while count:
                zone = lba // zone_size
                n = min(count, (zone + 1) * zone_size - lba)
                owners = counts.setdefault(zone, {})
                owners[path] = owners.get(path, 0) + n
                lba += n
                count -= n
    return {zone: sorted(owners.items(), key=lambda o: (-o[1], o[0]))[:limit] for zone, owners in counts.items()}


def zone_owners(data: dict, zone: int, limit: int = 20) -> list[tuple[str, int]]:
    """Files with blocks in ``zone`` and how many, most first (from the snapshot's file list)."""
    if "owners" not in data:
        data["owners"] = owners_index(data.get("files", ()), data["device"]["zone_size"], limit)
    return data["owners"].get(zone, [])[:limit]


def extent_strip(entry: dict, zones: int, zone_size: int, width: int) -> str:
    """The file's blocks across the zones as one line of ``width`` cells: '#' where it has blocks."""
    width = max(1, min(width, zones))
    per = zones / width
    cells = [False] * width
    for z in file_zones(entry, zone_size):
        cells[min(width - 1, int(z / per))] = True
    return "".join("#" if c else "." for c in cells)


def bound_range(binding: dict) -> str:
    """A binding's advice range, as bytes ``start-end`` (``start-`` to the end of the file)."""
    start, length = binding["start"], binding["length"]
    return f"{start}-{start + length - 1}" if length else f"{start}-"


def bindings_table(bound: list[dict]) -> Table:
    """Which kernel serves which file, for which process and range (``csd.bound``)."""
    table = Table(title="bindings", title_justify="left")
    for col in ("file", "pid", "range", "kernel", "kind", "engine", "by"):
        table.add_column(col, justify="right" if col == "pid" else "left", overflow="fold")
    for b in bound:
        table.add_row(b.get("path") or f"ino {b['ino']}", str(b["pid"]), bound_range(b), b["kernel"], b["kind"],
                      b["engine"], b["route"])
    return table


class Rates:
    """Requests per second, per opcode and in all, from successive snapshots of a server's
    cumulative counters (a counter that went back, as after a restart, counts from zero)."""

    def __init__(self, history: int = 120):
        self.last: tuple[int, dict[str, int]] | None = None  # (taken_ns, opcode -> requests)
        self.now: dict[str, float] = {}  # opcode -> requests/s between the last two snapshots
        self.total: collections.deque[float] = collections.deque(maxlen=history)  # all opcodes, over time

    def add(self, server: dict | None, taken_ns: int) -> None:
        if not server:
            return
        counts = {name: o["requests"] for name, o in (server.get("opcodes") or {}).items()}
        if self.last is not None and taken_ns > self.last[0]:
            seconds, before = (taken_ns - self.last[0]) / 1e9, self.last[1]
            self.now = {name: (n - before.get(name, 0) if n >= before.get(name, 0) else n) / seconds
                        for name, n in counts.items()}
            self.total.append(sum(self.now.values()))
        self.last = (taken_ns, counts)


def server_lines(data: dict, rates: Rates | None = None) -> list[tuple[str, str]]:
    """The server view's rows, or one row saying the target is not a server; with ``rates``,
    each opcode's requests per second first."""
    target = data.get("target", {})
    server = data.get("server")
    if server:
        rows = []
        if rates is not None and rates.total:
            rows.append(("requests/s", f"{rates.total[-1]:,.0f}"))
        for k, v in server.items():
            if k == "type":
                continue
            if isinstance(v, dict):  # per opcode, busiest first
                rows += [(name, (f"{rates.now[name]:,.0f}/s, " if rates is not None and name in rates.now else "")
                          + f"{o['requests']:,} requests, p50 {o['p50_us']:.0f} µs, p99 {o['p99_us']:.0f} µs")
                         for name, o in v.items()]
            else:
                rows.append((k.replace("_", " "), str(v)))
        return rows
    if target.get("live_server"):
        return [("transport", "fuse (control socket)"), ("counters", "the server reports none")]
    return [("server", f"not a server: {target.get('kind', 'image')} opened in this process")]


def _pairs(title: str, rows) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    for k, v in rows:
        table.add_row(k, v)
    return table


def tables(data: dict) -> list[Table]:
    """The ``--once`` output: ``zcsdfs stats``'s tables, then zone states, files and the server."""
    from zcsdfs.cli.stats import tables as stats_tables
    out = stats_tables(data)
    states = data["device"]["zone_states"]
    out.insert(1, _pairs("zone states", [(k, str(v)) for k, v in states.items()]))
    zs = data["device"]["zone_size"]
    files = Table(title="files" + (" (cut)" if data.get("files_truncated") else ""), title_justify="left")
    for col in ("path", "size", "blocks", "extents", "zones"):
        files.add_column(col, justify="left" if col in ("path", "zones") else "right")
    for entry in data.get("files", ()):
        if entry["kind"] == "dir":
            continue
        zones = file_zones(entry, zs)
        shown = ",".join(map(str, zones[:8])) + ("…" if len(zones) > 8 else "")
        files.add_row(entry["path"], str(entry["size"]), str(entry["blocks"]), str(len(entry["extents"])), shown)
    out.append(files)
    if not data.get("server"):
        out.append(_pairs("server", server_lines(data)))
    return out
