"""Unmodified standard-library users on top of osx.io.open file objects and osx functions."""

import csv
import json
import shutil
import tarfile
import zipfile

from tests.api.tree import get, put

RECORD = {"name": "zcsdfs", "zones": [1, 2, 3], "nested": {"ok": True, "pi": 3.25}, "text": "ünï ☃"}


def test_json_dump_and_load(both):
    def body(osx):
        with osx.io.open("data.json", "w", encoding="utf-8") as f:
            json.dump(RECORD, f, indent=2)
        with osx.io.open("data.json", encoding="utf-8") as f:
            return json.load(f), osx.stat("data.json")
    assert both.run(body)[0] == RECORD


def test_json_load_truncated_file(both):
    def body(osx):
        put(osx, "bad.json", b'{"a": [1, 2')
        with osx.io.open("bad.json") as f:
            json.load(f)
    both.run(body, fails=ValueError)


def test_csv_writer_and_reader(both):
    rows = [["id", "name", "note"], ["1", "a,b", 'say "hi"'], ["2", "line\nbreak", ""]]

    def body(osx):
        with osx.io.open("t.csv", "w", newline="") as f:
            csv.writer(f).writerows(rows)
        with osx.io.open("t.csv", newline="") as f:
            back = list(csv.reader(f))
        with osx.io.open("t.csv", newline="") as f:
            dicts = list(csv.DictReader(f))
        return back, dicts, get(osx, "t.csv")
    assert both.run(body)[0] == rows


def test_zipfile_write_and_read(both):
    def body(osx):
        with osx.io.open("a.zip", "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("hello.txt", "hello zip\n" * 100)
            z.writestr("dir/bin", bytes(range(256)) * 40)
        with osx.io.open("a.zip", "rb") as f, zipfile.ZipFile(f) as z:
            return z.namelist(), z.read("hello.txt")[:10], len(z.read("dir/bin")), z.testzip()
    assert both.run(body) == (["hello.txt", "dir/bin"], b"hello zip\n", 10240, None)


def test_zipfile_append_mode(both):
    def body(osx):
        with osx.io.open("a.zip", "wb") as f, zipfile.ZipFile(f, "w") as z:
            z.writestr("one", "1")
        with osx.io.open("a.zip", "r+b") as f, zipfile.ZipFile(f, "a") as z:
            z.writestr("two", "2")
        with osx.io.open("a.zip", "rb") as f, zipfile.ZipFile(f) as z:
            return z.namelist(), z.read("two")
    assert both.run(body) == (["one", "two"], b"2")


def test_zipfile_rejects_garbage(both):
    def body(osx):
        put(osx, "bad.zip", b"not a zip at all" * 10)
        with osx.io.open("bad.zip", "rb") as f:
            try:
                zipfile.ZipFile(f)
            except zipfile.BadZipFile as e:
                return str(e)
    assert both.run(body) == "File is not a zip file"


def test_tarfile_via_fileobj(both):
    def body(osx):
        payload = b"tar payload\n" * 50
        with osx.io.open("a.tar.gz", "wb") as f, tarfile.open(fileobj=f, mode="w:gz") as t:
            info = tarfile.TarInfo("inner/file.txt")
            info.size = len(payload)
            info.mtime = 1_000_000_000
            with osx.io.open("payload", "wb") as p:
                p.write(payload)
            with osx.io.open("payload", "rb") as p:
                t.addfile(info, p)
        with osx.io.open("a.tar.gz", "rb") as f, tarfile.open(fileobj=f, mode="r:gz") as t:
            member = t.getmember("inner/file.txt")
            return t.getnames(), member.size, member.mtime, t.extractfile(member).read() == payload
    assert both.run(body) == (["inner/file.txt"], 600, 1_000_000_000, True)


def test_tarfile_stream_mode(both):
    def body(osx):
        with osx.io.open("s.tar", "wb") as f, tarfile.open(fileobj=f, mode="w|") as t:
            for i in range(5):
                data = f"member {i}".encode()
                info = tarfile.TarInfo(f"m{i}")
                info.size = len(data)
                with osx.io.open(f"src{i}", "wb+") as src:
                    src.write(data)
                    src.seek(0)
                    t.addfile(info, src)
        with osx.io.open("s.tar", "rb") as f, tarfile.open(fileobj=f, mode="r|") as t:
            return [(m.name, t.extractfile(m).read()) for m in t]
    assert both.run(body)[4] == ("m4", b"member 4")


def test_shutil_copyfileobj(both):
    def body(osx):
        data = bytes(range(256)) * 2000
        put(osx, "src", data)
        with osx.io.open("src", "rb") as a, osx.io.open("dst", "wb") as b:
            shutil.copyfileobj(a, b, 7000)
        return get(osx, "dst") == data, osx.stat("dst")
    assert both.run(body)[0] is True


def test_shutil_copyfileobj_text(both):
    def body(osx):
        with osx.io.open("src.txt", "w") as f:
            f.write("line\n" * 1000)
        with osx.io.open("src.txt") as a, osx.io.open("dst.txt", "w") as b:
            shutil.copyfileobj(a, b)
        return get(osx, "dst.txt") == get(osx, "src.txt")
    assert both.run(body) is True


def test_print_to_file(both):
    def body(osx):
        with osx.io.open("out.txt", "w") as f:
            print("a", 1, 2.5, sep="|", file=f)
            print("second", file=f, end="")
        return get(osx, "out.txt")
    assert both.run(body) == b"a|1|2.5\nsecond"
