"""What a learner typed, parsed once into terms both backends can trust (pure).

The syntax is the one search boxes teach: words must all match, "quoted phrases" match in
order, `-word` excludes, `OR` between two terms accepts either. Only word characters survive
into a backend's query language, so no input can smuggle FTS5 or tsquery operators in; a query
with nothing left to look for is refused before it reaches the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

# Highlight markers: control characters stripped from every indexed text, so only the
# database's highlighter can produce them; the presenter turns them into <mark> after escaping.
MARK_START = "\x02"
MARK_END = "\x03"
MAX_TERMS = 12

_WORD = re.compile(r"\w+", re.UNICODE)
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')


class Mode(StrEnum):
    WORDS = "words"  # whole words (stemmed on PostgreSQL), typo-tolerant titles
    PREFIX = "prefix"  # as you type: every word may be the start of a longer one


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]  # one word, or a phrase
    negated: bool = False


@dataclass(frozen=True)
class Clause:
    """Terms of which any one may match (`a OR b`); a query matches every clause."""

    alternatives: tuple[Term, ...]


@dataclass(frozen=True)
class ParsedQuery:
    text: str
    mode: Mode
    clauses: tuple[Clause, ...] = ()
    excluded: tuple[Term, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.clauses

    @property
    def words(self) -> list[str]:
        return [
            word for clause in self.clauses for term in clause.alternatives for word in term.words
        ]


def parse(text: str, mode: Mode = Mode.WORDS) -> ParsedQuery:
    clauses: list[list[Term]] = []
    excluded: list[Term] = []
    pending_or = False
    count = 0
    for match in _TOKEN.finditer(text):
        negation, phrase, bare = match.groups()
        if bare is not None and bare == "OR":
            pending_or = bool(clauses)
            continue
        negated = bool(negation) or (bare is not None and bare.startswith("-"))
        words = tuple(word.lower() for word in _WORD.findall(phrase if bare is None else bare))
        if not words or count >= MAX_TERMS:
            pending_or = False
            continue
        count += 1
        term = Term(words, negated)
        if negated:
            excluded.append(term)
        elif pending_or:
            clauses[-1].append(term)
        elif bare is not None and len(words) > 1:
            # "rate-limit" or "e.g." typed bare: each word is required, not the phrase.
            clauses.extend([Term((word,))] for word in words)
        else:
            clauses.append([term])
        pending_or = False
    return ParsedQuery(
        text=text,
        mode=mode,
        clauses=tuple(Clause(tuple(alternatives)) for alternatives in clauses),
        excluded=tuple(excluded),
    )


def fts5_expression(query: ParsedQuery, corrections: dict[str, list[str]] | None = None) -> str:
    """The query as an FTS5 MATCH expression; `corrections` adds close indexed words to a
    word that is not indexed (typo tolerance)."""
    corrections = corrections or {}
    prefix = query.mode == Mode.PREFIX
    groups = []
    for clause in query.clauses:
        options = []
        for term in clause.alternatives:
            options.append(_fts5_term(term, prefix))
            if len(term.words) == 1:
                options.extend(
                    _fts5_term(Term((word,)), False) for word in corrections.get(term.words[0], [])
                )
        groups.append("(" + " OR ".join(options) + ")")
    expression = " AND ".join(groups)
    for term in query.excluded:
        expression += " NOT " + _fts5_term(term, False)
    return expression


def _fts5_term(term: Term, prefix: bool) -> str:
    # Words are \w+ only, so double quotes cannot occur inside; quoting still makes FTS5 read
    # keywords such as NEAR or AND as plain words.
    quoted = '"' + " ".join(term.words) + '"'
    return quoted + "*" if prefix else quoted


def prefix_tsquery(query: ParsedQuery) -> str:
    """The query for PostgreSQL's to_tsquery in prefix mode: every word may continue."""
    clauses = []
    for clause in query.clauses:
        options = [
            " <-> ".join(f"'{word}':*" for word in term.words) for term in clause.alternatives
        ]
        clauses.append("(" + " | ".join(options) + ")")
    expression = " & ".join(clauses)
    for term in query.excluded:
        expression += " & !(" + " <-> ".join(f"'{word}'" for word in term.words) + ")"
    return expression


def boolean_mode_expression(query: ParsedQuery) -> str:
    """The query for MariaDB/MySQL's MATCH ... AGAINST (... IN BOOLEAN MODE): every clause is
    required (`+`), alternatives share a group, excluded terms are `-`, prefixes end in `*`."""
    prefix = query.mode == Mode.PREFIX
    parts = []
    for clause in query.clauses:
        options = " ".join(_boolean_term(term, prefix) for term in clause.alternatives)
        parts.append(f"+({options})")
    parts.extend("-" + _boolean_term(term, False) for term in query.excluded)
    return " ".join(parts)


def _boolean_term(term: Term, prefix: bool) -> str:
    # Words are \w+ only: no operator of the boolean syntax can come from the learner.
    if len(term.words) > 1:
        return '"' + " ".join(term.words) + '"'
    return term.words[0] + ("*" if prefix else "")


def clean(text: str) -> str:
    """Text as it is indexed: the highlight markers removed, so stored text cannot fake them."""
    return text.replace(MARK_START, "").replace(MARK_END, "")


def websearch_text(query: ParsedQuery) -> str:
    """The parsed query written back in websearch syntax, for PostgreSQL's
    websearch_to_tsquery: the same terms the SQLite backend searches for."""
    clauses = [
        " OR ".join(_websearch_term(term) for term in clause.alternatives)
        for clause in query.clauses
    ]
    clauses.extend("-" + _websearch_term(term) for term in query.excluded)
    return " ".join(clauses)


def _websearch_term(term: Term) -> str:
    return term.words[0] if len(term.words) == 1 else '"' + " ".join(term.words) + '"'
