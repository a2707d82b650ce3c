"""Text from outside made fit for one log line.

Event ids, operation names, resource URIs, claims and the errors describing a malformed event are
chosen by whoever wrote the event. Logged whole, a megabyte ``resourceUri`` becomes a megabyte log line
and a newline inside a claim forges a log line of its own. ``printable`` is the one way such text
reaches a log message (or an exception text that gets logged).
"""

from __future__ import annotations

LIMIT = 200
"""How many characters of an untrusted value a log line shows, by default."""


def printable(value: object, *, limit: int = LIMIT) -> str:
    """``value`` as a bounded, single-line log fragment.

    Characters that are not printable (C0 and C1 controls such as newline, CR and ESC, the Unicode line
    and paragraph separators, bidirectional overrides, non-ASCII spaces) are escaped as in a Python
    literal (``\\n``, ``\\x1b``, ``\\u2028``). At most ``limit`` characters of the escaped text are kept;
    a cut is marked ``…(+N chars)``, N being how many characters of the original were left out.
    Strings are shown as they are, numbers and ``None`` as ``str()`` shows them, anything else by its
    type alone (``<list>``): rendering an arbitrary object could cost as much as the object is large.
    """
    text = _text(value)
    pieces: list[str] = []
    used = 0
    for index, char in enumerate(text):  # stops at the limit: a 1 MB string costs no more than a short one
        piece = char if char.isprintable() else repr(char)[1:-1]
        if used + len(piece) > limit:
            return "".join(pieces) + f"…(+{len(text) - index} chars)"
        pieces.append(piece)
        used += len(piece)
    return "".join(pieces)


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | float):
        return str(value)
    if isinstance(value, int):
        # str() refuses ints of more than 4300 digits (and would be slow for them).
        return str(value) if value.bit_length() <= 128 else f"<int of {value.bit_length()} bits>"
    return f"<{type(value).__name__}>"
