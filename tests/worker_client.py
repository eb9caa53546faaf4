"""Talking to the partition-host worker in this process (no SSH): the hosts tests' client."""

from __future__ import annotations

import io
import json


def serve_frames(request: dict, *, stamped: bool = True) -> list[tuple[bytes, object]]:
    """The frames ``dvo.remote.serve`` answers to ``request``; ``stamped`` adds this dvo's
    version and protocol, as a real client does."""
    from dvo.hosts.protocol import PROTOCOL, dvo_version, read_frame
    from dvo.remote import serve

    body = {"version": dvo_version(), "protocol": PROTOCOL, **request} if stamped else request
    out = io.BytesIO()
    serve(io.BytesIO(json.dumps(body).encode()), out)
    stream, frames = io.BytesIO(out.getvalue()), []
    while stream.tell() < len(out.getvalue()):
        frames.append(read_frame(stream))
    return frames
