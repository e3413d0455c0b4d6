"""The tolerant grammar the answer parser reads bracketed values with: tokens, matched brackets, and
values (JSON lists, Python tuples, JSON objects) read from any bracket, memoised, in time linear in the
text. A *candidate* is a list whose items are all points (2-3 numbers) or ``{"point": [...]}`` objects;
a lone point such as ``[600, 520]`` is an intermediate coordinate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

_MAX_NESTING = 16

_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<num>[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|(?i:inf(?:inity)?|nan)\b))
  | (?P<str>"(?:[^"\\\n]|\\.){0,400}")
  | (?P<word>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<open>[\[({])
  | (?P<close>[\])}])
  | (?P<punct>[,:])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_CLOSER_OF = {"[": "]", "(": ")", "{": "}"}
_OPENER_OF = {v: k for k, v in _CLOSER_OF.items()}
_WORD_VALUES = {"true": True, "false": False, "null": None, "none": None}



class Token(NamedTuple):
    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True, eq=False)
class Seq:
    items: list
    bracket: str
    start: int
    end: int


@dataclass(frozen=True, eq=False)
class Obj:
    pairs: dict
    start: int
    end: int


FAIL = object()


def tokenize(text: str) -> list[Token]:
    tokens = []
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup
        if kind != "space":
            tokens.append(Token(kind, m.group(), m.start(), m.end()))
    return tokens


def match_brackets(tokens: list[Token]) -> tuple[dict[int, int], list[int]]:
    """Pair each opener with its closer; also return openers still open at the end of the text.

    A closer pairs with the nearest open bracket of its own type; brackets opened after that one
    and never closed are abandoned. Per-type stacks keep this linear.
    """
    match: dict[int, int] = {}
    stack: list[int] = []
    by_type: dict[str, list[int]] = {"[": [], "(": [], "{": []}
    for i, tok in enumerate(tokens):
        if tok.kind == "open":
            by_type[tok.text].append(len(stack))
            stack.append(i)
        elif tok.kind == "close":
            depths = by_type[_OPENER_OF[tok.text]]
            if not depths:
                continue
            depth = depths[-1]
            while len(stack) > depth:
                j = stack.pop()
                by_type[tokens[j].text].pop()
            match[j] = i  # j: the opener popped last, the one at ``depth``
    return match, list(stack)


class ValueReader:
    """Reads bracketed values with a tolerant JSON/Python-literal grammar, memoised per start token."""

    def __init__(self, tokens: list[Token], match: dict[int, int]) -> None:
        self.tokens = tokens
        self.match = match
        self.memo: dict[int, object] = {}

    def read(self, i: int, depth: int = 0) -> object:
        """The value starting at token ``i`` (``FAIL`` if the bracketed text is not one)."""
        if i in self.memo:
            return self.memo[i]
        if depth >= _MAX_NESTING:
            return FAIL  # not memoised: read from a shallower start, this token may still be fine
        value = self._read(i, depth)
        self.memo[i] = value
        return value

    def _scalar(self, tok: Token) -> object:
        if tok.kind == "num":
            return float(tok.text)
        if tok.kind == "str":
            return tok.text[1:-1]
        if tok.kind == "word" and tok.text.lower() in _WORD_VALUES:
            return _WORD_VALUES[tok.text.lower()]
        return FAIL

    def _read(self, i: int, depth: int) -> object:
        tok = self.tokens[i]
        if tok.kind != "open":
            return self._scalar(tok)
        end = self.match.get(i)
        if end is None:
            return FAIL
        items: list = []
        keys: list = []
        j = i + 1
        is_obj = tok.text == "{"
        while j < end:
            if is_obj:
                key_tok = self.tokens[j]
                if key_tok.kind not in ("str", "word") or j + 2 >= end or self.tokens[j + 1].text != ":":
                    return FAIL
                keys.append(key_tok.text.strip('"'))
                j += 2
            value = self.read(j, depth + 1)
            if value is FAIL:
                return FAIL
            items.append(value)
            j = (self.match[j] + 1) if self.tokens[j].kind == "open" else j + 1
            if j < end:
                if self.tokens[j].text != ",":
                    return FAIL
                j += 1
        start, stop = tok.start, self.tokens[end].end
        if is_obj:
            return Obj(dict(zip(keys, items)), start, stop)
        return Seq(items, tok.text, start, stop)


def is_number(v: object) -> bool:
    return isinstance(v, float)


def is_point(v: object) -> bool:
    """A bracketed group of scalars with at least one number: what a single point looks like."""
    return (
        isinstance(v, Seq)
        and len(v.items) > 0
        and all(x is None or isinstance(x, bool | float) for x in v.items)
        and any(is_number(x) for x in v.items)
    )


def is_point_object(v: object) -> bool:
    return isinstance(v, Obj) and "point" in v.pairs and is_point(v.pairs["point"])


def is_candidate(v: object) -> bool:
    return (
        isinstance(v, Seq)
        and len(v.items) > 0
        and all(is_point(x) or is_point_object(x) for x in v.items)
    )


@dataclass
class Scan:
    candidates: list[Seq] = field(default_factory=list)
    lone_points: list[Seq] = field(default_factory=list)


def collect(value: object, scan: Scan) -> None:
    """Walk a value tree, recording point lists (without descending into them) and lone points."""
    if is_candidate(value):
        scan.candidates.append(value)
    elif is_point(value):
        scan.lone_points.append(value)
    elif isinstance(value, Seq):
        for item in value.items:
            collect(item, scan)
    elif isinstance(value, Obj):
        for item in value.pairs.values():
            collect(item, scan)


def scan_values(scope: str) -> tuple[list[Token], dict[int, int], list[int], Scan]:
    """Tokens of ``scope``, their matched brackets, brackets still open at the end, and every candidate
    and lone point among the outermost readable values."""
    tokens = tokenize(scope)
    match, open_at_end = match_brackets(tokens)
    reader = ValueReader(tokens, match)
    scan = Scan()
    i = 0
    while i < len(tokens):
        if tokens[i].kind == "open" and i in match:
            value = reader.read(i)
            if value is not FAIL:
                collect(value, scan)
                i = match[i] + 1
                continue
        i += 1
    return tokens, match, open_at_end, scan
