"""Crafted names and paths are refused by the worker, the host table and the SkyTable."""

from __future__ import annotations

import subprocess
import sys

import pytest
from worker_client import serve_frames

from dvo.errors import DvoError, HostError

CRAFTED = ["../../etc", "n0000/0001; rm -rf /", "$(id)", "/etc/passwd", "n0000/../../x", "a\nb"]


def _serve(request: dict) -> list[dict]:
    return [payload for _, payload in serve_frames(request, stamped=False)]


def _request(root, parts, **kw):
    from dvo.hosts.protocol import PROTOCOL, dvo_version

    base = {"version": dvo_version(), "protocol": PROTOCOL, "op": "checksums",
            "catdir": str(root), "partitions": parts}  # fmt: skip
    return {**base, **kw}


@pytest.mark.parametrize("name", CRAFTED)
def test_worker_rejects_crafted_partition_names(tiny_db_master, name):
    frames = _serve(_request(tiny_db_master, [{"index": 5492, "name": name}], op="scan"))
    assert frames[-1]["type"] == "error" and frames[-1]["code"] == "request"
    assert "unsafe partition name" in frames[-1]["message"]


def test_worker_rejects_a_name_that_is_not_its_partition(tiny_db_master):
    frames = _serve(_request(tiny_db_master, [{"index": 5492, "name": "n0000/0579"}]))
    assert frames[-1]["code"] == "partition"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"version": "0.0.0-other"}, "version"),
        ({"protocol": 99}, "version"),
        ({"op": "exec"}, "request"),
        ({"catdir": "/tmp/../etc"}, "request"),
        ({"catdir": "relative/db"}, "request"),
        ({"catdir": "/nonexistent/db"}, "request"),
        ({"partitions": "n0000/0007"}, "request"),
        ({"partitions": [{"index": 10**9, "name": "n0000/0007"}]}, "request"),
    ],
)
def test_worker_structured_errors(tiny_db_master, change, code):
    frames = _serve(_request(tiny_db_master, [{"index": 5492, "name": "n0000/0007"}], **change))
    assert frames[0]["type"] == "hello"
    assert frames[-1]["type"] == "error" and frames[-1]["code"] == code


def test_worker_process_answers_errors_as_json():
    result = subprocess.run([sys.executable, "-m", "dvo.remote"], input=b"not json",
                            capture_output=True, timeout=120)  # fmt: skip
    assert result.returncode == 1 and b"request is not valid JSON" in result.stdout


@pytest.mark.parametrize(
    "line",
    [
        "1 node /data/../etc",
        "1 node relative/path",
        "1 node;id /data",
        "1 $(id) /data",
        "1 node /data 22 root;id",
        "1 node /data 22 dvo ~/../k",
        "1 node /data 22 dvo - python;rm",
        "1 node /data 22 dvo - '$(id)'",
        "0 node /data",
        "256 node /data",
        "1 node /data 70000",
        "1 node /da ta x y z w v",
        "1 node /data\n1 other /data",
    ],
)
def test_host_table_rejects(line):
    from dvo.hosts.table import parse_host_table

    with pytest.raises(HostError):
        parse_host_table(line)


def test_host_table_round_trip(tmp_path, tiny_db):
    from dvo.hosts.table import Host, read_host_table, write_host_table

    hosts = [Host(2, "node02.example", "/data/db", port=2222, user="dvo", keyfile="~/.ssh/k"),
             Host(1, "10.0.0.1", "/srv/dvo")]  # fmt: skip
    write_host_table(tiny_db.catdir, hosts)
    assert read_host_table(tiny_db.catdir) == sorted(hosts, key=lambda h: h.id)


@pytest.mark.parametrize("name", CRAFTED)
def test_skytable_and_layout_reject_crafted_names(name):
    from dvo import layout

    with pytest.raises(DvoError):
        layout.check_partition_name(name)


def test_remote_command_is_fixed_and_quoted():
    from dvo.hosts.ssh import remote_command
    from dvo.hosts.table import Host

    assert remote_command(Host(1, "n", "/d", python="/usr/bin/python3")) == (
        "/usr/bin/python3 -m dvo.remote"
    )
    with pytest.raises(HostError):
        Host(1, "n", "/d", python="python3 -c 'import os'")
