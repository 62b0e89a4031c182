"""uvicorn's own log lines, kept free of what a client may put in a URL's query string."""

from __future__ import annotations

import logging

# The logger uvicorn writes its WebSocket lines to (the access log, off here, is another).
UVICORN_LOGGER = "uvicorn.error"


class WithoutQueryStrings(logging.Filter):
    """Logs the paths in uvicorn's lines without their query strings.

    uvicorn logs every WebSocket with its path and query string (`"WebSocket /graphql?…"
    [accepted]`), access log or not. A client whose browser cannot set headers on a WebSocket
    may put its token there, and the line printed it; the gateway reads nothing from that query
    string (the token travels in connection_init), so the path alone tells the reader as much.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_without_query(arg) for arg in record.args)
        return True


def _without_query(arg: object) -> object:
    if isinstance(arg, str) and arg.startswith("/") and "?" in arg:
        return arg.partition("?")[0]
    return arg


def hide_query_strings() -> None:
    """Install WithoutQueryStrings on uvicorn's logger (once uvicorn configured its logging)."""
    logging.getLogger(UVICORN_LOGGER).addFilter(WithoutQueryStrings())
