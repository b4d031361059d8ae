"""A small Bicep lexer for the one thing pycep's trees cannot tell: which bare
words are references. pycep renders the identifier `location` and the string
literal 'location' the same way, so the reference checks read the source:
strip comments and string literals (keeping the expressions inside `${...}`),
then classify every identifier as a declaration, a property name, an object key,
a function name, a keyword, or a reference to a symbol of the file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_KEYWORDS = {
    "param", "var", "resource", "module", "output", "targetScope", "existing", "if", "for",
    "in", "true", "false", "null", "metadata", "import", "type", "func", "as", "with", "using",
}
_TYPES = {"string", "int", "bool", "object", "array", "resource", "any"}
_PUNCT = ("::", "?.", "??", "==", "!=", "<=", ">=", "&&", "||", "=>")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Token:
    kind: str  # "ident", "string", "punct", "newline", "number"
    text: str
    line: int


def tokenize(src: str) -> list[Token]:
    tokens: list[Token] = []
    i, line, n = 0, 1, len(src)

    def lex_string(i: int, line: int) -> tuple[int, int]:
        """i points after the opening quote; emits a string token and the tokens
        of every ${...} inside it; returns the index after the closing quote."""
        start_line = line
        while i < n:
            c = src[i]
            if c == "\\":
                i += 2
                continue
            if c == "'":
                tokens.append(Token("string", "'", start_line))
                return i + 1, line
            if c == "\n":
                line += 1
            if src.startswith("${", i):
                i, line = lex_expr(i + 2, line, until_brace=True)
                continue
            i += 1
        raise ValueError(f"unterminated string starting on line {start_line}")

    def lex_expr(i: int, line: int, until_brace: bool) -> tuple[int, int]:
        depth = 0
        while i < n:
            c = src[i]
            if c == "\n":
                tokens.append(Token("newline", "\n", line))
                line += 1
                i += 1
            elif c in " \t\r":
                i += 1
            elif src.startswith("//", i):
                while i < n and src[i] != "\n":
                    i += 1
            elif src.startswith("/*", i):
                end = src.index("*/", i + 2)
                line += src.count("\n", i, end)
                i = end + 2
            elif src.startswith("'''", i):
                end = src.index("'''", i + 3)
                tokens.append(Token("string", "'''", line))
                line += src.count("\n", i, end)
                i = end + 3
            elif c == "'":
                i, line = lex_string(i + 1, line)
            elif m := _IDENT.match(src, i):
                tokens.append(Token("ident", m.group(), line))
                i = m.end()
            elif m := _NUMBER.match(src, i):
                tokens.append(Token("number", m.group(), line))
                i = m.end()
            else:
                op = next((p for p in _PUNCT if src.startswith(p, i)), c)
                if until_brace:
                    if op == "{":
                        depth += 1
                    elif op == "}":
                        if depth == 0:
                            return i + 1, line
                        depth -= 1
                tokens.append(Token("punct", op, line))
                i += len(op)
        if until_brace:
            raise ValueError("unterminated ${ interpolation")
        return i, line

    lex_expr(0, 1, until_brace=False)
    return tokens


@dataclass(frozen=True)
class Reference:
    name: str
    line: int
    output: str | None  # NAME in `symbol.outputs.NAME`, if written that way


def analyse(src: str) -> tuple[dict[str, str], list[Reference]]:
    """Returns ({declared symbol: kind}, [references]) of one Bicep file."""
    toks = tokenize(src)
    declared: dict[str, str] = {}
    refs: list[Reference] = []
    skip: set[int] = set()

    def nxt(k: int, allow_newline: bool = False) -> Token | None:
        k += 1
        while k < len(toks) and toks[k].kind == "newline" and not allow_newline:
            k += 1
        return toks[k] if k < len(toks) else None

    # Declarations.
    for k, t in enumerate(toks):
        if t.kind != "ident":
            continue
        prev = toks[k - 1] if k else None
        at_statement_start = prev is None or prev.kind == "newline"
        if at_statement_start and t.text in ("param", "var", "resource", "module", "output", "metadata"):
            name = nxt(k)
            if name is not None and name.kind == "ident":
                idx = toks.index(name, k)
                skip.update({k, idx})
                if t.text != "output" and t.text != "metadata":
                    declared[name.text] = t.text
                if t.text in ("param", "output"):
                    typ = nxt(idx)
                    if typ is not None and typ.kind == "ident" and typ.text in _TYPES:
                        skip.add(toks.index(typ, idx + 1))
        elif t.text == "for":
            # for item in ... | for (item, index) in ...
            j = k + 1
            while j < len(toks) and not (toks[j].kind == "ident" and toks[j].text == "in"):
                if toks[j].kind == "ident":
                    declared.setdefault(toks[j].text, "loop")
                    skip.add(j)
                j += 1

    # References.
    for k, t in enumerate(toks):
        if t.kind != "ident" or k in skip or t.text in _KEYWORDS:
            continue
        prev = toks[k - 1] if k else None
        after = toks[k + 1] if k + 1 < len(toks) else None
        if prev is not None and prev.kind == "punct" and prev.text in (".", "::", "?.", "@"):
            continue  # property, nested resource, decorator
        if after is not None and after.kind == "punct" and after.text == "(":
            continue  # function call
        if (after is not None and after.kind == "punct" and after.text == ":"
                and (prev is None or prev.kind == "newline" or (prev.kind == "punct" and prev.text in "{,"))):
            continue  # object key
        output = None
        if (k + 4 < len(toks) and toks[k + 1].text == "." and toks[k + 2].text == "outputs"
                and toks[k + 3].text in (".", "?.") and toks[k + 4].kind == "ident"):
            output = toks[k + 4].text
        refs.append(Reference(t.text, t.line, output))
    return declared, refs
