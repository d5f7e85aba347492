"""The full-screen inspector (Textual): Zones, Files, Log & GC, Kernels, Server.

A timer asks for a snapshot several times a second; the snapshot is taken
in a worker thread (a control-socket query or the in-process stack's
``stats``, which holds the lfs's lock for one pass), so neither the
screen nor the server's request path waits on the other. Snapshots are
incremental (an unchanged zone's record and row are the last ones), and
the screen redraws only what changed, so a watched in-process writer
loses little of the GIL. The file list costs a walk of the tree, so it is
taken only while something on screen needs it (the Files view, or the
owners of a zone the user selected), at most every ``FILES_PERIOD``
seconds and never more than ``FILES_SHARE`` of the time. Events (GC runs,
checkpoints, kernel faults) of an in-process stack are kept as they
arrive. Errors are notifications, never tracebacks.
"""

from __future__ import annotations

import collections
import functools
import math
import time

from rich import box
from rich.console import Group
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.geometry import Region
from textual.message import Message
from textual.screen import ModalScreen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import (Button, DataTable, Footer, Header, Label, Sparkline, Static, TabbedContent,
                             TabPane)

from zcsdfs.tui import report

FILES_PERIOD = 2.0  # seconds between file-list walks, at least
FILES_SHARE = 0.02  # of the time a file-list walk may take (a big tree is walked less often)
MAX_FILE_ROWS = 5000  # rows the Files view shows (the JSON has them all)
FIXED_SIZE = ("#zone-heads", "#zone-detail", "#file-detail")  # Statics whose height the CSS sets
FILE_COLUMNS = ("path", "size", "blocks", "ext", "zones")
HISTORY = 120  # write-amplification samples kept for the chart
VIEWS = (("zones", "zones", "1"), ("files", "files", "2"), ("log", "log", "3"),
         ("kernels", "kernels", "4"), ("server", "server", "5"))  # (pane, footer word, key)
ACTION_WORDS = {"gc": "run garbage collection (one victim)", "snapshot": "take a snapshot",
                "checkpoint": "write a checkpoint"}


def _shade(ratio: float | None) -> str:
    """Background for a zone's valid-block ratio: darker holds more garbage."""
    if ratio is None:
        return ""
    level = 232 + round(ratio * 10)  # xterm greys 232 (black) .. 242
    return f" on color({level})"


class ZoneMap(Widget, can_focus=True):
    """One cell per zone (or per group of zones, when there are more zones than cells):
    coloured by state, the glyph filled to the write pointer, shaded by valid ratio.

    Drawn line by line: a snapshot in which a few zones moved redraws the lines holding them
    (rows are compared by identity, ``report.zone_rows`` reuses an unchanged zone's)."""

    BINDINGS = [Binding("left", "move(-1)", "prev", show=False), Binding("right", "move(1)", "next", show=False),
                Binding("up", "move_row(-1)", show=False), Binding("down", "move_row(1)", show=False),
                Binding("home", "move(-1000000)", show=False), Binding("end", "move(1000000)", show=False)]

    class Selected(Message):
        def __init__(self, zones: range, by_user: bool = False):
            super().__init__()
            self.zones = zones
            self.by_user = by_user

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rows: list[dict] = []
        self.cursor = 0  # a cell
        self._cells: list[tuple[str, str]] = []  # per cell: (glyph, style), cursor not applied
        self._layout: tuple | None = None  # (width, height, zones) the cells were drawn for
        self._strips: dict[int, Strip] = {}  # line -> its drawing
        self._geometry_key: tuple | None = None
        self._geometry_value = (4, 1, 1)

    def _geometry(self) -> tuple[int, int, int]:
        """(columns per cell, cells per line, zones per cell) for this size and these zones, computed
        once per change of either (``size`` is not cheap, and a snapshot may change many cells)."""
        size = self.size
        key = (size.width, size.height, len(self.rows))
        if self._geometry_key != key:
            width, height, zones = key
            w = next((w for w in (4, 3, 2) if zones <= (width // w) * max(1, height)), 1)
            columns = max(1, width // w)
            per = max(1, math.ceil(zones / max(1, columns * max(1, height)))) if width else 1  # 1: not laid out yet
            self._geometry_key, self._geometry_value = key, (w, columns, per)
        return self._geometry_value

    @property
    def cell_width(self) -> int:
        """Columns per cell: wide while every zone fits, one (and grouped zones) when not."""
        return self._geometry()[0]

    @property
    def columns(self) -> int:
        return self._geometry()[1]

    @property
    def per_cell(self) -> int:
        return self._geometry()[2]

    @property
    def cells(self) -> int:
        return math.ceil(len(self.rows) / self.per_cell) if self.rows else 0

    def selected(self) -> range:
        per = self.per_cell
        start = min(self.cursor * per, max(0, len(self.rows) - 1))
        return range(start, min(len(self.rows), start + per))

    def update_rows(self, rows: list[dict]) -> None:
        old, self.rows = self.rows, rows
        self.cursor = min(self.cursor, max(0, self.cells - 1))
        if not self._laid_out():
            return  # every cell drawn again
        per, columns = self.per_cell, self.columns
        changed = {i // per for i, (a, b) in enumerate(zip(old, rows)) if a is not b}
        for cell in changed:
            spec = self._cell(cell)
            if spec != self._cells[cell]:
                self._cells[cell] = spec
                self._redraw(cell // columns)

    def _laid_out(self) -> bool:
        """Whether the cells drawn still fit the size and the zones (if not, they are computed again)."""
        self._geometry()
        layout = self._geometry_key
        if layout == self._layout:
            return True
        self._layout = layout
        self._cells = [self._cell(cell) for cell in range(self.cells)]
        self._strips.clear()
        self.refresh()
        return False

    def _redraw(self, line: int) -> None:
        self._strips.pop(line, None)
        self.refresh(Region(0, line, self._layout[0], 1))

    def _cell(self, cell: int) -> tuple[str, str]:
        per = self.per_cell
        group = self.rows[cell * per:(cell + 1) * per]
        if per == 1:
            merged = group[0]
            state = merged["state"]
        else:
            state = collections.Counter(r["state"] for r in group).most_common(1)[0][0]
            merged = {"filled": sum(r["filled"] for r in group), "capacity": sum(r["capacity"] for r in group),
                      "valid": None if any(r["valid"] is None for r in group) else sum(r["valid"] for r in group)}
        _letter, colour = report.STATE_STYLE.get(state, ("?", "white"))
        glyph = report.zone_glyph(merged) if merged["filled"] else "·"
        return glyph, f"{colour}{_shade(report.valid_ratio(merged))}"

    def on_resize(self) -> None:
        self.cursor = min(self.cursor, max(0, self.cells - 1))
        self.post_message(self.Selected(self.selected()))

    def _select(self, cell: int) -> None:
        before = self.cursor
        self.cursor = max(0, min(cell, self.cells - 1))
        if self._laid_out():
            self._redraw(before // self.columns)
            self._redraw(self.cursor // self.columns)
        self.post_message(self.Selected(self.selected(), by_user=True))

    def action_move(self, step: int) -> None:
        self._select(self.cursor + step)

    def action_move_row(self, step: int) -> None:
        self._select(self.cursor + step * self.columns)

    def on_click(self, event: events.Click) -> None:
        cell = event.y * self.columns + event.x // self.cell_width
        if event.x < self.columns * self.cell_width and cell < self.cells:
            self.focus()
            self._select(cell)

    def render_line(self, y: int) -> Strip:
        self._laid_out()
        strip = self._strips.get(y)
        if strip is None:
            columns, w = self.columns, self.cell_width
            segments = []
            for cell in range(y * columns, min(self.cells, (y + 1) * columns)):
                glyph, style = self._cells[cell]
                if cell == self.cursor:
                    style += " reverse"
                segments.append(Segment(glyph * max(1, w - 1), _style(style)))
                if w > 1:
                    segments.append(Segment(" "))
            width = self._layout[0]
            strip = self._strips[y] = Strip(segments).extend_cell_length(width).crop(0, width).apply_style(
                self.rich_style)
        return strip


@functools.lru_cache(maxsize=512)
def _style(spec: str) -> Style:
    return Style.parse(spec)


class Confirm(ModalScreen[bool]):
    """Yes or no, before an action changes the volume."""

    BINDINGS = [Binding("y", "answer(True)", "yes"), Binding("n,escape", "answer(False)", "no")]

    def __init__(self, question: str):
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Label(self.question)
            with Horizontal():
                yield Button("Yes (y)", id="yes", variant="warning")
                yield Button("No (n)", id="no")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class Inspector(App):
    """The inspector of one source (``zcsdfs.tui.source``)."""

    TITLE = "zcsdfs inspect"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    ZoneMap { height: 1fr; min-height: 3; }
    #zone-legend, #zone-heads { height: 1; }
    #zone-detail { height: 8; border-top: solid $primary; }
    #files-table { height: 1fr; }
    #file-detail { height: 7; border-top: solid $primary; }
    #wa-chart, #rate-chart { height: 3; }
    Confirm { align: center middle; }
    #confirm { width: 60; height: auto; padding: 1 2; border: thick $warning; background: $surface; }
    #confirm Horizontal { height: auto; margin-top: 1; }
    """
    BINDINGS = [
        *(Binding(key, f"view('{vid}')", title) for vid, title, key in VIEWS),
        Binding("g", "act('gc')", "gc"),
        Binding("n", "act('snapshot')", "snap"),
        Binding("c", "act('checkpoint')", "ckpt"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, source, *, interval: float = 0.25):
        super().__init__()
        self.source = source
        self.interval = interval
        self.data: dict | None = None
        self.ticks = 0
        self._files_due = 0.0  # monotonic time of the next file-list walk
        self.updates = 0  # snapshots shown
        self.said: list[str] = []  # notifications, newest last (tests read them)
        self.wa_history: collections.deque[float] = collections.deque(maxlen=HISTORY)
        self.rates = report.Rates(HISTORY)  # a server's requests per second, from successive snapshots
        self.checkpoints: collections.deque = collections.deque(maxlen=16)
        self.faults: collections.deque = collections.deque(maxlen=16)
        self._files: list[dict] = []
        self._owners: dict[int, list] = {}  # zone -> files owning its blocks (report.owners_index)
        self._files_shown: tuple | None = None
        self._told_cut = False  # said that the Files view shows only the first MAX_FILE_ROWS
        self._picked = False  # the user selected a zone: its owners need the file list
        self._rows_cache: dict = {}  # report.zone_rows's, between snapshots
        self._shown: dict[str, object] = {}  # widget id -> what it shows (updated only when that changes)
        self._unsubscribe = None
        self.sub_title = f"{source.kind}{', read-only' if source.readonly else ''}: {source.name}"

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        with TabbedContent(initial="zones"):
            with TabPane("Zones", id="zones"):
                yield Static(self._legend(), id="zone-legend")
                yield Static("", id="zone-heads")
                yield ZoneMap(id="zone-map")
                yield Static("select a zone (arrows or click)", id="zone-detail")
            with TabPane("Files", id="files"):
                table = DataTable(id="files-table", cursor_type="row", zebra_stripes=False)
                table.add_columns(*FILE_COLUMNS)
                yield table
                yield Static("select a file", id="file-detail")
            with TabPane("Log & GC", id="log"):
                with VerticalScroll():
                    yield Static("", id="log-summary")
                    yield Label("write amplification (this mount), over time")
                    yield Sparkline([], id="wa-chart")
                    yield Static("", id="gc-runs")
            with TabPane("Kernels", id="kernels"):
                with VerticalScroll():
                    yield Static("", id="kernel-table")
            with TabPane("Server", id="server"):
                with VerticalScroll():
                    yield Label("requests per second (all opcodes), over time", id="rate-label")
                    yield Sparkline([], id="rate-chart")
                    yield Static("", id="server-table")
        yield Footer()

    @staticmethod
    def _legend() -> Text:
        text = Text(no_wrap=True, overflow="crop")
        for state in ("EMPTY", "IMPLICIT_OPEN", "CLOSED", "FULL", "READ_ONLY", "OFFLINE"):
            _letter, colour = report.STATE_STYLE[state]
            text.append("█", style=colour)
            text.append(f"{state.split('_')[-1].lower() if state != 'READ_ONLY' else 'ro'} ")
        text.append(" ▁..█ fill, dark: garbage")
        return text

    def on_mount(self) -> None:
        events_bus = getattr(getattr(self.source, "stack", None), "events", None)
        if events_bus is not None:
            self._unsubscribe = events_bus.subscribe(self._event)
        self.query_one(ZoneMap).focus()
        self.poll()
        self.set_interval(self.interval, self.poll)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _event(self, event) -> None:
        """Kept from whatever thread publishes it: a deque append, nothing else."""
        name = type(event).__name__
        if name == "CheckpointWritten":
            self.checkpoints.append(event)
        elif name == "KernelRun" and event.failure:
            self.faults.append(event)

    # -- snapshots ------------------------------------------------------------------------------

    def poll(self) -> None:
        """Take a snapshot in a worker thread, unless one is still being taken. A source whose
        snapshots are cheap and never wait on I/O (``inline``: an in-process stack's, about a
        millisecond) is asked on the screen's thread instead, when no file list is wanted: each
        hand-over between threads costs a watched writer of the same process its turn."""
        if any(w.group == "poll" and not w.is_finished for w in self.workers):
            return
        with_files = self.updates > 0 and self._files_wanted() and time.monotonic() >= self._files_due
        self.ticks += 1
        if getattr(self.source, "inline", False) and not with_files:
            try:
                data = self.source.snapshot(files=False)
            except Exception as exc:  # shown, never a traceback: the inspector keeps running
                self.tell(f"snapshot failed: {_message(exc)}", "error")
                return
            self.show(data)
            return
        self.run_worker(lambda: self._take(with_files), thread=True, group="poll", exit_on_error=False)

    def _files_wanted(self) -> bool:
        """Whether the screen shows something made of the file list (walked only then)."""
        view = self.query_one(TabbedContent).active
        return view == "files" or (view == "zones" and self._picked)

    def _take(self, with_files: bool) -> None:
        started = time.monotonic()
        try:
            data = self.source.snapshot(files=with_files)
            if with_files:  # who owns each zone's blocks, here rather than on the screen's thread
                data["owners"] = report.owners_index(data["files"], data["device"]["zone_size"])
                took = time.monotonic() - started
                self._files_due = started + max(FILES_PERIOD, took / FILES_SHARE)
        except Exception as exc:  # shown, never a traceback: the inspector keeps running
            self.call_from_thread(self.tell, f"snapshot failed: {_message(exc)}", "error")
            return
        self.call_from_thread(self.show, data)

    def tell(self, message: str, severity: str = "information") -> None:
        self.said.append(message)
        self.notify(message, severity=severity, markup=False)

    def show(self, data: dict) -> None:
        """Put one snapshot on every view."""
        if "files" in data:
            self._files, self._owners = data["files"], data["owners"]
        else:
            data["files"], data["owners"] = self._files, self._owners
        self.data = data
        self.updates += 1
        if self.updates == 1 and self._files_wanted():  # the first screen is up: now the file list
            self._walk_files()
        lfs = data.get("lfs")
        if lfs:
            self.wa_history.append(lfs["write_amplification"])
        self.rates.add(data.get("server"), data["target"]["taken_ns"])
        self._show_view(self.query_one(TabbedContent).active)

    def _show_view(self, view: str) -> None:
        """Draw the view on screen from the last snapshot (the others wait until they are shown:
        a snapshot costs the screen only what it shows)."""
        if self.data is None:
            return
        show = {"zones": self._show_zones, "files": self._show_files, "log": self._show_log,
                "kernels": self._show_kernels, "server": self._show_server}.get(view)
        if show is not None:
            show(self.data)

    def _walk_files(self) -> None:
        """Take the file list now (in a worker), whatever the timer's pace, unless a walk is under way."""
        if not any(w.group == "files" and not w.is_finished for w in self.workers):
            self.run_worker(lambda: self._take(True), thread=True, group="files", exit_on_error=False)

    def _put(self, selector: str, key, make) -> None:
        """Update a Static only when what it shows changed (``key``); one whose height the CSS fixes
        is repainted without a new layout of the screen (the costly part of an update)."""
        if self._shown.get(selector) != key:
            self._shown[selector] = key
            self.query_one(selector, Static).update(make(), layout=selector not in FIXED_SIZE)

    def _show_server(self, data: dict) -> None:
        chart = self.query_one("#rate-chart", Sparkline)
        chart.display = self.query_one("#rate-label").display = bool(data.get("server"))
        chart.data = list(self.rates.total) or [0.0]
        self.query_one("#server-table", Static).update(self._server_table(data, self.rates))

    def _show_zones(self, data: dict) -> None:
        zmap = self.query_one(ZoneMap)
        zmap.update_rows(report.zone_rows(data, self._rows_cache))
        rows = zmap.rows
        lfs = data.get("lfs")
        heads = [f"{s['stream'].lower()}→{s['head_zone']}@{s['write_pointer']:#x}" for s in lfs["streams"]
                 if s["head_zone"] is not None] if lfs else []
        states = " ".join(f"{k.lower()}:{v}" for k, v in data["device"]["zone_states"].items())
        per = zmap.per_cell
        line = f"{states}  heads {' '.join(heads) or '-'}" + (f"  ({per} zones/cell)" if per > 1 else "")
        self._put("#zone-heads", line, lambda: Text(line, no_wrap=True, overflow="ellipsis"))
        self._show_zone_detail(rows, zmap.selected())

    def on_zone_map_selected(self, message: ZoneMap.Selected) -> None:
        if message.by_user and not self._picked:
            self._picked = True  # owners from now on: the file list is wanted
            self._walk_files()
        if self.data is not None:
            self._show_zones(self.data)

    def _show_zone_detail(self, rows: list[dict], zones: range) -> None:
        if not len(zones):
            return
        rows = rows[zones.start:zones.stop]
        first = rows[0]
        name = f"zone {zones.start}" if len(zones) == 1 else f"zones {zones.start}-{zones.stop - 1}"
        valid = None if any(r["valid"] is None for r in rows) else sum(r["valid"] for r in rows)
        lines = [f"{name}  {'/'.join(sorted({r['state'] for r in rows}))}  "
                 f"wp {first['write_pointer']:#x}  filled {sum(r['filled'] for r in rows)}"
                 f"/{sum(r['capacity'] for r in rows)}  valid {'-' if valid is None else valid}",
                 f"role {first['role'] or '-'}  stream {first['stream'] or '-'}  "
                 f"written {sum(r['blocks_written'] for r in rows)}  read {sum(r['blocks_read'] for r in rows)}  "
                 f"resets {sum(r['resets'] for r in rows)}  finishes {sum(r['finishes'] for r in rows)}"]
        blocks: collections.Counter = collections.Counter()
        for z in zones:
            blocks.update(dict(report.zone_owners(self.data, z)))
        owners = sorted(blocks.items(), key=lambda o: (-o[1], o[0]))
        if owners:
            lines.append("owners: " + ", ".join(f"{p} ({n})" for p, n in owners[:12]))
        elif not self._files:
            lines.append("owners: listed once the files are read (select a zone)" if not self._picked
                         else "owners: reading the file list…")
        text = "\n".join(lines)
        self._put("#zone-detail", text, lambda: Text(text, overflow="fold"))

    def _show_files(self, data: dict) -> None:
        if not data["files"]:
            self._put("#file-detail", "reading", lambda: "reading the file list…")
            return
        files = data["files"][:MAX_FILE_ROWS]
        key = tuple((f["path"], f["size"], f["blocks"], len(f["extents"])) for f in files)
        if key == self._files_shown:
            return
        self._files_shown = key
        table = self.query_one("#files-table", DataTable)
        current = self._selected_path()
        zs = data["device"]["zone_size"]
        rows = []
        for f in files:
            name = f["path"] if f["depth"] == 0 else "  " * f["depth"] + f["path"].rsplit("/", 1)[-1]
            if f["kind"] == "dir" and f["depth"]:
                name += "/"
            zones = report.file_zones(f, zs)
            rows.append((f["path"], (name, str(f["size"]), str(f["blocks"]), str(len(f["extents"])),
                                     ",".join(map(str, zones[:6])) + ("…" if len(zones) > 6 else ""))))
        # columns as wide as their widest cell, set here: a table filled while on screen would
        # keep lines drawn before its auto widths caught up
        table.clear(columns=True)
        for i, label in enumerate(FILE_COLUMNS):
            table.add_column(label, width=max([len(label)] + [len(cells[i]) for _, cells in rows]))
        for path, cells in rows:
            table.add_row(*cells, key=path)
        if current is not None and current in table.rows:
            table.move_cursor(row=table.get_row_index(current))
        if (data.get("files_truncated") or len(data["files"]) > MAX_FILE_ROWS) and not self._told_cut:
            self._told_cut = True
            self.tell(f"the Files view shows the first {len(files)} entries", "warning")
        self._show_file_detail(self._selected_path())

    def _selected_path(self) -> str | None:
        table = self.query_one("#files-table", DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        self._show_file_detail(message.row_key.value if message.row_key is not None else None)

    def _show_file_detail(self, path: str | None) -> None:
        if self.data is None:
            return
        detail = self.query_one("#file-detail", Static)
        entry = next((f for f in self._files if f["path"] == path), None)
        self._shown.pop("#file-detail", None)
        if entry is None:
            detail.update("select a file" if self._files else "no file list for this target")
            return
        dev = self.data["device"]
        zs = dev["zone_size"]
        width = max(8, detail.size.width - 8 if detail.size.width else 60)
        lines = [f"{entry['path']}  {entry['kind']}  {entry['size']} bytes  {entry['blocks']} blocks  "
                 f"{len(entry['extents'])} extents",
                 "zones " + report.extent_strip(entry, dev["zones"], zs, width)]
        for first, lba, count in entry["extents"][:4]:
            lines.append(f"  block {first}+{count} → lba {lba:#x} (zone {lba // zs})")
        if len(entry["extents"]) > 4:
            lines.append(f"  … {len(entry['extents']) - 4} more extents")
        detail.update(Text("\n".join(lines), no_wrap=True, overflow="ellipsis"))

    def _show_log(self, data: dict) -> None:
        lfs = data.get("lfs")
        summary = self.query_one("#log-summary", Static)
        if not lfs:
            summary.update("no file system on this device")
            return
        table = Table.grid(padding=(0, 2))
        table.add_column()
        table.add_column(justify="right")
        table.add_column()
        table.add_column(justify="right")
        table.add_row("checkpoint generation", str(lfs["checkpoint_generation"]),
                      "checkpoint zone", str(lfs["checkpoint_zone"]))
        table.add_row("checkpoints (this mount)", str(lfs["checkpoints"]),
                      "blocks since checkpoint", str(lfs["blocks_since_checkpoint"]))
        table.add_row("units rolled forward", str(lfs["replayed_units"]), "dropped", str(lfs["dropped_units"]))
        table.add_row("free zones", str(lfs["free_zones"]), "reserve", str(lfs["reserve_zones"]))
        table.add_row("write amplification", f"{lfs['write_amplification']:.2f}",
                      "lifetime", f"{lfs['lifetime_write_amplification']:.2f}")
        table.add_row("GC runs", str(lfs["gc_runs"]), "blocks moved", str(lfs["gc_blocks_moved"]))
        summary.update(table)
        self.query_one("#wa-chart", Sparkline).data = list(self.wa_history) or [0.0]
        runs = Table(title="GC runs (newest last)", title_justify="left", expand=False)
        for col in ("victim", "policy", "valid", "moved", "freed", "ms"):
            runs.add_column(col, justify="right" if col != "policy" else "left")
        for r in lfs["recent_gc_runs"]:
            runs.add_row(str(r["victim"]), r["policy"], str(r["valid_blocks"]), str(r["blocks_moved"]),
                         "yes" if r["freed"] else "no", f"{r['seconds'] * 1e3:.1f}")
        if not lfs["recent_gc_runs"]:
            runs.add_row("-", "none yet", "", "", "", "")
        if self.checkpoints:
            cps = Table(title="checkpoints written while watching", title_justify="left")
            for col in ("generation", "zone", "zones freed", "ms"):
                cps.add_column(col, justify="right")
            for c in self.checkpoints:
                cps.add_row(str(c.generation), str(c.zone), str(len(c.freed_zones)), f"{c.seconds * 1e3:.1f}")
            self.query_one("#gc-runs", Static).update(Group(runs, cps))
        else:
            self.query_one("#gc-runs", Static).update(runs)

    def _show_kernels(self, data: dict) -> None:
        csd = data.get("csd")
        out = self.query_one("#kernel-table", Static)
        if not csd:
            out.update("no kernels: this target has no vfs")
            return
        table = Table(box=box.SIMPLE_HEAD, title=f"{csd['bindings']} bindings, {csd['runs']} runs, {csd['failures']} faults, "
                            f"{csd['bytes_in']} B in → {csd['bytes_out']} B out", title_justify="left")
        for col in ("kernel (kind, engine, bindings)", "runs", "faults", "in B", "out B", "in/out"):
            table.add_column(col, justify="left" if col.startswith("kernel") else "right", no_wrap=True,
                             ratio=1 if col.startswith("kernel") else None)
        for k in csd["kernels"]:
            reduction = f"{k['bytes_read'] / k['bytes_returned']:.1f}x" if k["bytes_returned"] else "-"
            name = Text(k["name"], overflow="ellipsis")
            name.append(f"\n {k['kind']}, {k['engine']}, {k['bindings']} bound", style="dim")
            table.add_row(name, str(k["calls"]), str(k["failures"]), str(k["bytes_read"]),
                          str(k["bytes_returned"]), reduction)
        if not csd["kernels"]:
            table.add_row("none bound", "", "", "", "", "")
        parts = [table]
        if csd.get("bound"):
            parts.append(report.bindings_table(csd["bound"]))
        if self.faults:
            faults = Table(title="recent faults", title_justify="left")
            for col in ("kernel", "ino", "offset", "message"):
                faults.add_column(col)
            for f in self.faults:
                faults.add_row(f.kernel, str(f.ino), str(f.offset), f.failure)
            parts.append(faults)
        out.update(Group(*parts) if len(parts) > 1 else table)

    @staticmethod
    def _server_table(data: dict, rates: report.Rates | None = None) -> Table:
        table = Table(show_header=False, title="server", title_justify="left")
        table.add_column("what")
        table.add_column("value", justify="right")
        for k, v in report.server_lines(data, rates):
            table.add_row(k, v)
        return table

    # -- keys -----------------------------------------------------------------------------------

    def action_view(self, view: str) -> None:
        self.query_one(TabbedContent).active = view

    def on_tabbed_content_tab_activated(self, message: TabbedContent.TabActivated) -> None:
        """The view's main widget takes the keys (arrows move its cursor)."""
        main = {"zones": "#zone-map", "files": "#files-table"}.get(message.pane.id)
        if main is not None:
            self.query_one(main).focus()
        if message.pane.id == "files" and self.data is not None and time.monotonic() >= self._files_due:
            self._walk_files()
        self._show_view(message.pane.id)

    def action_act(self, action: str) -> None:
        if self.source.readonly:
            self.tell(f"{self.source.kind} is read-only: no {action}", "error")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(lambda: self._act(action), thread=True, group="act", exit_on_error=False)

        self.push_screen(Confirm(f"{ACTION_WORDS[action].capitalize()} on {self.source.name}?"), answered)

    def _act(self, action: str) -> None:
        try:
            said = self.source.act(action)
        except Exception as exc:  # shown, never a traceback
            self.call_from_thread(self.tell, f"{action} failed: {_message(exc)}", "error")
            return
        self.call_from_thread(self.tell, said)
        self._files_due = 0.0  # the action may have moved blocks: walk the files again
        self.call_from_thread(self.poll)


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        from zcsdfs.cli import describe
        return describe(exc)
    return str(exc) or type(exc).__name__


def run(source, **kwargs) -> None:
    """Run the inspector of ``source`` in this terminal until the user quits."""
    Inspector(source, **kwargs).run()
