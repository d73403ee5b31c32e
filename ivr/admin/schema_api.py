"""``GET /schema/flow.json``: the flow language's JSON Schema at a stable URL, for editors.

Open (no token): it holds no call data, and an editor fetching a ``$schema`` URL cannot send
one. It answers with the ``$id`` of the URL it was asked at (the ``Host`` the guard accepted),
a validator (``ETag``, 304 when unchanged) and a short cache lifetime: a new server version
may change the language.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from aiohttp import web

from ivr.flow.schema_file import schema_text

SCHEMA_URL_PATH = "/schema/flow.json"
CACHE_CONTROL = "public, max-age=300"


@lru_cache(maxsize=16)  # one per name the console answers for
def _body(schema_id: str) -> tuple[bytes, str]:
    body = schema_text(schema_id).encode("utf-8")
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


async def flow_schema_json(request: web.Request) -> web.Response:
    """The schema, ``$id`` = this URL; 304 for an ``If-None-Match`` of the current one."""
    body, etag = _body(str(request.url.with_path(SCHEMA_URL_PATH).with_query(None)))
    headers = {"Cache-Control": CACHE_CONTROL, "ETag": etag}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)
