"""The answers that are not a plain prebuilt 200/204: an answer with flags (CORS,
preflight, HEAD, a batch's body), a refusal (with a request id, and CORS headers when the
origin is allowed) and a 500 for a bug. They read the server state (request ids, counters)
and the response table; the protocol (`protocol.py`) decides when each is due."""

from __future__ import annotations

from beacon._beacon import CODE_BATCH, CODE_CORS, CODE_HEAD
from beacon.http.request_tables import ECHO, H_ORIGIN
from beacon.http.responses import ResponseTable, cors_headers, request_id_header, with_headers
from beacon.state import ServerState


def flagged(
    responses: ResponseTable, state: ServerState, code: int, keep_alive: bool, origin: bytes | None
) -> bytes:
    """The answer for an `Ingest` code with flags, or a refusal: refusals carry a request
    id. `origin` is the request's Origin header as sent."""
    m = keep_alive * 2 + (code & CODE_HEAD != 0)
    if code & CODE_BATCH:
        echo = origin.strip(b" \t") if origin is not None and code & CODE_CORS else None
        response = responses.batch(code, m, echo)
    elif origin is not None and code & ECHO:
        # Echoed as Rust compared it: without surrounding whitespace.
        response = responses.with_cors(code, m, origin.strip(b" \t"))
    else:
        response = responses.by_mode[m][code & 0xFFFF]
    if code & 0xFFFF >= 400:
        response = with_headers(response, request_id_header(state.next_request_id()))
    return response


def failure(
    responses: ResponseTable, state: ServerState, exc: BaseException, *, close: bool
) -> bytes:
    """A bug while handling one request: 500 with a request id, logged, counted."""
    extra = request_id_header(state.request_failed(exc))
    return with_headers(responses.get(500, keep_alive=not close), extra)


def refusal(
    responses: ResponseTable,
    state: ServerState,
    status: int,
    reason: str,
    url: bytes,
    headers: list[bytes | None],
) -> bytes:
    """A request the parser could not finish (counted as `reason`), answered before the
    connection closes; `url` and `headers` are what was read of it."""
    state.count_refusal(reason)
    extra = request_id_header(state.next_request_id())
    origin = headers[H_ORIGIN]
    if origin is not None and state.ingest.cors_allowed(url, headers):
        extra += cors_headers(origin.strip(b" \t"))
    return with_headers(responses.get(status, keep_alive=False), extra)
