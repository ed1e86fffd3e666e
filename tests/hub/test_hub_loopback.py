"""The loopback test server itself, checked with plain requests (so other tests can trust its faults)."""

from __future__ import annotations

import os

import pytest
import requests
from loopback import Fault, LoopbackServer

DATA = os.urandom(200_000)


def test_serves_on_loopback_with_ranges_and_logs_requests():
    with LoopbackServer() as server:
        url = server.add("/a b/file.bin", DATA)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/a%20b/file.bin")
        assert requests.get(url).content == DATA
        partial = requests.get(url, headers={"Range": "bytes=1000-"})
        assert partial.status_code == 206 and partial.content == DATA[1000:]
        assert partial.headers["Content-Range"] == f"bytes 1000-{len(DATA) - 1}/{len(DATA)}"
        assert requests.get(url, headers={"Range": "bytes=10-19"}).content == DATA[10:20]
        assert requests.get(url, headers={"Range": f"bytes={len(DATA)}-"}).status_code == 416
        assert requests.head(url).headers["Content-Length"] == str(len(DATA))
        assert requests.get(server.url + "/nothing").status_code == 404
        assert [r.range for r in server.requests[:3]] == [None, (1000, None), (10, 19)]
        assert server.count("/a b/file.bin") == 4 and server.count("/a b/file.bin", "HEAD") == 1


def test_faults_are_consumed_in_order_by_gets_only():
    with LoopbackServer() as server:
        url = server.add("/f", DATA, faults=[Fault.status(503, {"Retry-After": "7"}), Fault.corrupt(3),
                                             Fault.truncate(10), Fault.redirect("/g")])
        server.add("/g", b"moved")
        assert requests.head(url).status_code == 200  # HEAD does not take a fault
        first = requests.get(url)
        assert first.status_code == 503 and first.headers["Retry-After"] == "7"
        corrupted = requests.get(url).content
        assert len(corrupted) == len(DATA) and corrupted[3] == DATA[3] ^ 0xFF and corrupted[4:] == DATA[4:]
        assert requests.get(url).content == DATA[:10]
        assert requests.get(url).content == b"moved"
        assert requests.get(url).content == DATA
        assert [r.fault for r in server.requests if r.path == "/f"] == [None, "status", "corrupt", "truncate",
                                                                          "redirect", None]


def test_drop_and_stall_break_the_connection():
    with LoopbackServer() as server:
        url = server.add("/d", DATA, faults=[Fault.drop(after=5000), Fault.stall(5)])
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            requests.get(url).content
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.get(url, timeout=0.3)


def test_range_support_can_be_switched_off():
    with LoopbackServer(range_support=False) as server:
        url = server.add("/r", DATA)
        response = requests.get(url, headers={"Range": "bytes=100-"})
        assert response.status_code == 200 and response.content == DATA
