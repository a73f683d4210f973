"""Every query of the search domain, for both backends behind one interface.

`SearchIndex` is what the service sees: find a page of hits, count hits per kind, highlight a
page's hits, and keep documents up to date. `PostgresIndex` speaks tsvector/tsquery, ts_rank_cd,
ts_headline and pg_trgm; `SqliteIndex` speaks FTS5 MATCH, bm25(), snippet() and highlight().
Both take the same `Scope`, and the scope's rules (which roadmaps are visible, whose notes)
are conditions of the very statement that matches, ranks and counts: nothing is fetched and
filtered afterwards, so nothing can leak through a count, a page or a snippet.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
    cast,
    column,
    delete,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    table,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.search.models import FTS_TABLE, SearchDocument
from skilltree.search.query import (
    MARK_END,
    MARK_START,
    Clause,
    Mode,
    ParsedQuery,
    Term,
    fts5_expression,
    parse,
    prefix_tsquery,
    websearch_text,
)

TS_CONFIG = "skilltree_search"
# Title words weigh ten times body words in bm25 (PostgreSQL's weights A and B do the same).
BM25_WEIGHTS = (10.0, 1.0)
SNIPPET_WORDS = 24
_MARKS = f'StartSel="{MARK_START}", StopSel="{MARK_END}"'
TITLE_HEADLINE = f"{_MARKS}, HighlightAll=true"
# One excerpt around the best cover of the query, as FTS5's snippet() gives on SQLite. Two
# fragments (MaxFragments=2) cost a prefix search's page a quarter of its time in ts_headline's
# fragment search (docs/performance.md, third profile).
BODY_HEADLINE = f"{_MARKS}, MaxWords={SNIPPET_WORDS}, MinWords=8"


@dataclass(frozen=True)
class Scope:
    """What the caller may find, and what they asked to narrow it to."""

    visible_roadmaps: Select[int]  # the roadmaps domain's subquery of ids
    user_id: int | None  # whose notes and resources are searched (None: none)
    kinds: frozenset[str]
    status_topics: Select[int] | None = None  # only topics in this subquery...
    status_excludes: bool = False  # ...or only those not in it ("todo")


@dataclass(frozen=True)
class Hit:
    id: int
    key: str
    kind: str
    roadmap_id: int
    topic_id: int
    title: str
    score: float


@dataclass(frozen=True)
class Highlight:
    title: str
    snippet: str


@dataclass(frozen=True)
class DocumentText:
    key: str
    kind: str
    roadmap_id: int
    topic_id: int
    user_id: int | None
    title: str
    body: str
    updated_at: datetime


@dataclass(frozen=True)
class HitPage:
    """A page of hits; a backend that gets the counts or highlights in the same statement
    fills them in, otherwise the service asks for them."""

    hits: list[Hit]
    counts: dict[str, int] | None = None
    highlights: dict[int, Highlight] | None = None


class SearchIndex(Protocol):
    async def page(
        self,
        session: AsyncSession,
        query: ParsedQuery,
        scope: Scope,
        after: tuple[float, int] | None,
        limit: int,
        fuzzy: bool,
    ) -> HitPage: ...

    async def counts(
        self, session: AsyncSession, query: ParsedQuery, scope: Scope, fuzzy: bool
    ) -> dict[str, int]: ...

    async def highlights(
        self, session: AsyncSession, query: ParsedQuery, ids: Sequence[int]
    ) -> dict[int, Highlight]: ...


def _sql(text: str) -> ColumnElement[Any]:
    """A column, table or cast the models do not map (the backends' full-text objects)."""
    return literal_column(text)


def index_for(session: AsyncSession) -> SearchIndex:
    """The backend of the session's database."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return PostgresIndex()
    if dialect == "sqlite":
        return SqliteIndex()
    return MysqlIndex()


def _scope_conditions(scope: Scope) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        SearchDocument.roadmap_id.in_(scope.visible_roadmaps.scalar_subquery()),
    ]
    if scope.status_topics is not None:
        in_status = SearchDocument.topic_id.in_(scope.status_topics.scalar_subquery())
        conditions.append(not_(in_status) if scope.status_excludes else in_status)
    return conditions


@dataclass(frozen=True)
class _Part:
    condition: ColumnElement[bool]
    topics: bool  # the roadmaps' topics (everyone's corpus), or the caller's own documents


def _parts(scope: Scope) -> list[_Part]:
    """The parts of the corpus the caller may search: roadmap topics, and their own notes and
    resources. Each part is queried on its own (different indexes serve them), and a kind is
    named only when the part holds others, so the indexes stay usable."""
    parts: list[_Part] = []
    if "topic" in scope.kinds:
        parts.append(_Part(SearchDocument.user_id.is_(None), topics=True))
    personal = scope.kinds & {"note", "resource"}
    if scope.user_id is not None and personal:
        mine = SearchDocument.user_id == scope.user_id
        if len(personal) == 1:
            mine = and_(mine, SearchDocument.kind == next(iter(personal)))
        parts.append(_Part(mine, topics=False))
    return parts


def _owners(scope: Scope) -> list[ColumnElement[bool]]:
    return [part.condition for part in _parts(scope)]


def _beyond(score: Any, row_id: Any, after: tuple[float, int] | None) -> list[ColumnElement[bool]]:
    """Hits ranked after the last one of the previous page (score descending, then id)."""
    if after is None:
        return []
    last_score, last_id = after
    return [or_(score < last_score, and_(score == last_score, row_id > last_id))]


async def _page_of(
    session: AsyncSession,
    hits: Select[Any] | None,
    after: tuple[float, int] | None,
    limit: int,
) -> HitPage:
    """A page cut from a backend's ranked hits statement (score descending, then id)."""
    if hits is None:
        return HitPage([], {})
    ranked = hits.subquery()
    statement = (
        select(ranked)
        .where(*_beyond(ranked.c.score, ranked.c.id, after))
        .order_by(ranked.c.score.desc(), ranked.c.id)
        .limit(limit)
    )
    return HitPage([Hit(*row) for row in (await session.execute(statement)).all()])


async def _counts_of(session: AsyncSession, hits: Select[Any] | None) -> dict[str, int]:
    """Hits per kind, from a backend's hits statement (ranked or not: only `kind` is read)."""
    if hits is None:
        return {}
    found = hits.subquery()
    statement = select(found.c.kind, func.count()).group_by(found.c.kind)
    return {kind: int(count) for kind, count in (await session.execute(statement)).all()}


class PostgresIndex:
    """tsvector @@ tsquery on the generated column; when that finds nothing, each word may
    instead be close to a title word (pg_trgm)."""

    def _tsquery(self, query: ParsedQuery) -> ColumnElement[Any]:
        config = _sql(f"'{TS_CONFIG}'::regconfig")
        if query.mode == Mode.PREFIX:
            return func.to_tsquery(config, prefix_tsquery(query))
        return func.websearch_to_tsquery(config, websearch_text(query))

    def _matches(self, query: ParsedQuery) -> ColumnElement[bool]:
        """The typo-tolerant match: every clause matches the text, or (a lone word of four
        letters or more) is close to a word of the title. Trigram similarity forgives a typo in
        one word without letting a query whose other words match nothing through."""
        vector = _sql("search_documents.search_vector")
        config = _sql(f"'{TS_CONFIG}'::regconfig")
        conditions: list[ColumnElement[bool]] = []
        for clause in query.clauses:
            alone = ParsedQuery(query.text, query.mode, (clause,))
            text_query = (
                func.to_tsquery(config, prefix_tsquery(alone))
                if query.mode == Mode.PREFIX
                else func.websearch_to_tsquery(config, websearch_text(alone))
            )
            options = [vector.op("@@")(text_query)]
            for term in clause.alternatives:
                if len(term.words) == 1 and len(term.words[0]) >= 4:
                    options.append(literal(term.words[0]).op("<%")(SearchDocument.title))
            conditions.append(or_(*options))
        for term in query.excluded:
            alone = ParsedQuery(query.text, Mode.WORDS, (Clause((Term(term.words),)),))
            excluded = func.websearch_to_tsquery(config, websearch_text(alone))
            conditions.append(not_(vector.op("@@")(excluded)))
        return and_(*conditions)

    def _hits(
        self, query: ParsedQuery, scope: Scope, fuzzy: bool, *, ranked: bool = True
    ) -> Select[Any] | None:
        """The matching documents with their score; `ranked=False` leaves the (costly) score
        out, for counting."""
        parts = self._hit_parts(query, scope, fuzzy, ranked=ranked)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else union_all(*parts).subquery().select()

    def _hit_parts(
        self, query: ParsedQuery, scope: Scope, fuzzy: bool, *, ranked: bool = True
    ) -> list[Select[Any]]:
        """One statement per part of the corpus (roadmap topics, the caller's own documents)."""
        vector = _sql("search_documents.search_vector")
        tsquery = self._tsquery(query)
        rank = cast(func.ts_rank_cd(vector, tsquery), Float)
        if fuzzy:
            matches = self._matches(query)
            typed = " ".join(query.words)
            similarity = cast(func.word_similarity(typed, SearchDocument.title), Float)
            score = (rank + similarity * 0.1).label("score")
        else:
            # One condition on the whole query: the GIN indexes answer it in one scan.
            matches = vector.op("@@")(tsquery)
            score = rank.label("score")
        columns: list[Any] = [SearchDocument.kind]
        if ranked:
            columns = [
                SearchDocument.id,
                SearchDocument.key,
                SearchDocument.kind,
                SearchDocument.roadmap_id,
                SearchDocument.topic_id,
                SearchDocument.title,
                score,
            ]
        strict = vector.op("@@")(tsquery)
        return [
            # Typos are forgiven in roadmap topics' titles: notes have none, and a learner's
            # own documents are found through their (user, tsvector) index.
            select(*columns).where(
                part.condition, matches if part.topics else strict, *_scope_conditions(scope)
            )
            if part.topics or query.mode != Mode.PREFIX
            else self._own_prefix_hits(part, scope, tsquery, ranked=ranked)
            for part in _parts(scope)
        ]

    def _own_prefix_hits(
        self, part: _Part, scope: Scope, tsquery: ColumnElement[Any], *, ranked: bool
    ) -> Select[Any]:
        """A learner's documents matching a prefix query, matched row by row.

        A prefix (`requ:*`) stands for every indexed word it begins, and GIN answers it by
        collecting the posting lists of all those words over every learner's notes before the
        user id narrows them: 0.2 s with a million notes (EXPLAIN ANALYZE in
        docs/performance.md). A learner's own documents are few (bounded by the topics they
        wrote on), so they are read first through the (user_id, kind) B-tree and matched one by
        one; MATERIALIZED keeps the planner from folding the condition back into the GIN scan.
        Exact words keep the GIN index, which skips through posting lists by user.
        """
        own = (
            select(
                SearchDocument.id,
                SearchDocument.key,
                SearchDocument.kind,
                SearchDocument.roadmap_id,
                SearchDocument.topic_id,
                SearchDocument.title,
                _sql("search_documents.search_vector").label("search_vector"),
            )
            .where(part.condition, *_scope_conditions(scope))
            .cte("own_documents")
            .prefix_with("MATERIALIZED")
        )
        found = own.c.search_vector.op("@@")(tsquery)
        if not ranked:
            return select(own.c.kind).where(found)
        score = cast(func.ts_rank_cd(own.c.search_vector, tsquery), Float).label("score")
        return select(
            own.c.id, own.c.key, own.c.kind, own.c.roadmap_id, own.c.topic_id, own.c.title, score
        ).where(found)

    async def page(
        self,
        session: AsyncSession,
        query: ParsedQuery,
        scope: Scope,
        after: tuple[float, int] | None,
        limit: int,
        fuzzy: bool,
    ) -> HitPage:
        """One statement: every match ranked and counted per kind, the page cut from it, and
        only the page's rows highlighted (ts_headline is the costly part).

        Built with as few nested subqueries as the SQL needs: each one makes SQLAlchemy copy
        every column again, and building the statement cost the client more CPU than the
        database spent running it (docs/performance.md, third profile)."""
        parts = self._hit_parts(query, scope, fuzzy)
        if not parts:
            return HitPage([], {})
        matched = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("matched")
        score, row_id = matched.c.score, matched.c.id
        per_kind = [
            func.count().filter(matched.c.kind == kind).over().label(f"n_{kind}")
            for kind in ("topic", "note", "resource")
        ]
        if after is None:
            # The first page: the counts and the page come from the same level.
            page = (
                select(matched, *per_kind).order_by(score.desc(), row_id).limit(limit)
            ).subquery("page")
        else:
            # A later page: counted over every match first, then cut after the cursor.
            counted = select(matched, *per_kind).subquery("counted")
            page = (
                select(counted)
                .where(*_beyond(counted.c.score, counted.c.id, after))
                .order_by(counted.c.score.desc(), counted.c.id)
                .limit(limit)
            ).subquery("page")
        config = _sql(f"'{TS_CONFIG}'::regconfig")
        tsquery = self._tsquery(query)
        statement = (
            select(
                page,
                func.ts_headline(config, SearchDocument.title, tsquery, TITLE_HEADLINE),
                func.ts_headline(config, SearchDocument.body, tsquery, BODY_HEADLINE),
            )
            .join(SearchDocument, SearchDocument.id == page.c.id)
            .order_by(page.c.score.desc(), page.c.id)
        )
        rows = (await session.execute(statement)).all()
        if not rows:
            return HitPage([])  # past the last page (or nothing): the service counts apart
        first = rows[0]._mapping
        counts = {kind: int(first[f"n_{kind}"]) for kind in ("topic", "note", "resource")}
        return HitPage(
            hits=[Hit(*row[:7]) for row in rows],
            counts=counts,
            highlights={row[0]: Highlight(row[-2], row[-1]) for row in rows},
        )

    async def counts(
        self, session: AsyncSession, query: ParsedQuery, scope: Scope, fuzzy: bool
    ) -> dict[str, int]:
        return await _counts_of(session, self._hits(query, scope, fuzzy, ranked=False))

    async def highlights(
        self, session: AsyncSession, query: ParsedQuery, ids: Sequence[int]
    ) -> dict[int, Highlight]:
        if not ids:
            return {}
        config = _sql(f"'{TS_CONFIG}'::regconfig")
        tsquery = self._tsquery(query)
        statement = select(
            SearchDocument.id,
            func.ts_headline(config, SearchDocument.title, tsquery, TITLE_HEADLINE),
            func.ts_headline(config, SearchDocument.body, tsquery, BODY_HEADLINE),
        ).where(SearchDocument.id.in_(list(ids)))
        rows = (await session.execute(statement)).all()
        return {row[0]: Highlight(row[1], row[2]) for row in rows}


class SqliteIndex:
    """FTS5 MATCH over the external-content table; bm25() ranks, snippet() highlights. When
    that finds nothing, words that match nothing are widened with close indexed words."""

    fts = _sql(FTS_TABLE)  # the table's name as a value: MATCH, bm25() and snippet() take it
    fts_table = table(FTS_TABLE, column("rowid"))
    vocabulary = table(f"{FTS_TABLE}_vocab", column("term"))

    async def _expression(self, session: AsyncSession, query: ParsedQuery, fuzzy: bool) -> str:
        corrections = await self._corrections(session, query) if fuzzy else {}
        return fts5_expression(query, corrections)

    async def _corrections(self, session: AsyncSession, query: ParsedQuery) -> dict[str, list[str]]:
        """Close indexed words for each single word that matches nothing at all (a typo).

        Candidates share the first letter and are within two letters of the length; difflib's
        ratio picks the close ones. Only the vocabulary is read, never a document, and the
        corrected words are searched under the same scope as any other.
        """
        corrections: dict[str, list[str]] = {}
        for clause in query.clauses:
            for term in clause.alternatives:
                if len(term.words) != 1 or len(term.words[0]) < 4:
                    continue
                word = term.words[0]
                if await self._matches_anything(session, word):
                    continue
                term_column = self.vocabulary.c.term
                candidates = (
                    select(term_column)
                    .select_from(self.vocabulary)
                    .where(term_column >= word[0], term_column < word[0] + "\U0010ffff")
                    # Indexed words are stems ("idempot"), so shorter ones are candidates too.
                    .where(func.length(term_column).between(len(word) - 4, len(word) + 2))
                )
                words = [row[0] for row in (await session.execute(candidates)).all()]
                close = difflib.get_close_matches(word, words, n=3, cutoff=0.8)
                if close:
                    corrections[word] = close
        return corrections

    async def _matches_anything(self, session: AsyncSession, word: str) -> bool:
        probe = (
            select(self.fts_table.c.rowid)
            .where(self.fts.op("MATCH")(fts5_expression(parse(word))))
            .limit(1)
        )
        return (await session.execute(probe)).first() is not None

    def _hits(self, expression: str, scope: Scope) -> Select[Any] | None:
        owners = _owners(scope)
        if not owners:
            return None
        score = (-func.bm25(self.fts, *BM25_WEIGHTS)).label("score")
        return (
            select(
                SearchDocument.id,
                SearchDocument.key,
                SearchDocument.kind,
                SearchDocument.roadmap_id,
                SearchDocument.topic_id,
                SearchDocument.title,
                score,
            )
            .select_from(self.fts_table)
            .join(SearchDocument, SearchDocument.id == self.fts_table.c.rowid)
            .where(self.fts.op("MATCH")(expression), or_(*owners), *_scope_conditions(scope))
        )

    async def page(
        self,
        session: AsyncSession,
        query: ParsedQuery,
        scope: Scope,
        after: tuple[float, int] | None,
        limit: int,
        fuzzy: bool,
    ) -> HitPage:
        hits = self._hits(await self._expression(session, query, fuzzy), scope)
        return await _page_of(session, hits, after, limit)

    async def counts(
        self, session: AsyncSession, query: ParsedQuery, scope: Scope, fuzzy: bool
    ) -> dict[str, int]:
        hits = self._hits(await self._expression(session, query, fuzzy), scope)
        return await _counts_of(session, hits)

    async def highlights(
        self, session: AsyncSession, query: ParsedQuery, ids: Sequence[int]
    ) -> dict[int, Highlight]:
        if not ids:
            return {}
        statement = (
            select(
                self.fts_table.c.rowid,
                func.highlight(self.fts, 0, MARK_START, MARK_END),
                func.snippet(self.fts, 1, MARK_START, MARK_END, " … ", SNIPPET_WORDS),
            )
            .select_from(self.fts_table)
            .where(self.fts.op("MATCH")(await self._expression(session, query, fuzzy=True)))
            .where(self.fts_table.c.rowid.in_(list(ids)))
        )
        rows = (await session.execute(statement)).all()
        return {int(row[0]): Highlight(row[1], row[2]) for row in rows}


class MysqlIndex:
    """MariaDB and MySQL: MATCH ... AGAINST in boolean mode on the FULLTEXT index. No typo
    tolerance or stemming; highlights are marked in Python on the page's rows."""

    def _hits(self, query: ParsedQuery, scope: Scope, ranked: bool) -> Select[Any] | None:
        owners = _owners(scope)
        if not owners:
            return None
        from sqlalchemy.dialects.mysql import match as mysql_match  # only on MariaDB/MySQL

        table = SearchDocument.__table__.c
        relevance = mysql_match(
            table.title, table.body, against=boolean_mode_expression(query)
        ).in_boolean_mode()
        columns: list[Any] = [SearchDocument.kind]
        if ranked:
            columns = [
                SearchDocument.id,
                SearchDocument.key,
                SearchDocument.kind,
                SearchDocument.roadmap_id,
                SearchDocument.topic_id,
                SearchDocument.title,
                cast(relevance, Float).label("score"),
            ]
        return select(*columns).where(relevance > 0, or_(*owners), *_scope_conditions(scope))

    async def page(
        self,
        session: AsyncSession,
        query: ParsedQuery,
        scope: Scope,
        after: tuple[float, int] | None,
        limit: int,
        fuzzy: bool,
    ) -> HitPage:
        return await _page_of(session, self._hits(query, scope, ranked=True), after, limit)

    async def counts(
        self, session: AsyncSession, query: ParsedQuery, scope: Scope, fuzzy: bool
    ) -> dict[str, int]:
        return await _counts_of(session, self._hits(query, scope, ranked=False))

    async def highlights(
        self, session: AsyncSession, query: ParsedQuery, ids: Sequence[int]
    ) -> dict[int, Highlight]:
        if not ids:
            return {}
        statement = select(SearchDocument.id, SearchDocument.title, SearchDocument.body).where(
            SearchDocument.id.in_(list(ids))
        )
        words = query.words
        return {
            row[0]: Highlight(mark_words(row[1], words), mark_words(_excerpt(row[2], words), words))
            for row in (await session.execute(statement)).all()
        }


def boolean_mode_expression(query: ParsedQuery) -> str:
    """The parsed query in InnoDB's boolean syntax: every clause required (+), phrases quoted,
    exclusions (-), prefixes (*). Words are \\w+ only, so no operator can be smuggled in."""
    suffix = "*" if query.mode == Mode.PREFIX else ""
    parts = []
    for clause in query.clauses:
        options = [
            f'"{" ".join(term.words)}"' if len(term.words) > 1 else term.words[0] + suffix
            for term in clause.alternatives
        ]
        parts.append("+(" + " ".join(options) + ")")
    parts.extend(f'-"{" ".join(term.words)}"' for term in query.excluded)
    return " ".join(parts)


def mark_words(text: str, words: Sequence[str]) -> str:
    if not words:
        return text
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")", re.IGNORECASE)
    return pattern.sub(lambda m: MARK_START + m.group(0) + MARK_END, text)


def _excerpt(text: str, words: Sequence[str], width: int = 200) -> str:
    lowered = text.lower()
    found = [lowered.find(word) for word in words if lowered.find(word) >= 0]
    start = max(0, min(found) - width // 4) if found else 0
    excerpt = text[start : start + width]
    return ("… " if start else "") + excerpt + (" …" if start + width < len(text) else "")


# Keeping documents: upsert by key, delete by key or by what they hang on.


# Every column but the key is replaced when a document is written again.
_REWRITTEN = ("kind", "roadmap_id", "topic_id", "user_id", "title", "body", "updated_at")


def _rows(documents: Sequence[DocumentText]) -> list[dict[str, object]]:
    return [
        {"key": document.key} | {name: getattr(document, name) for name in _REWRITTEN}
        for document in documents
    ]


async def upsert(session: AsyncSession, documents: Sequence[DocumentText]) -> None:
    if not documents:
        return
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        await _mysql_upsert(session, documents)
        return
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(SearchDocument).values(_rows(documents))
    changed = {name: statement.excluded[name] for name in _REWRITTEN}
    await session.execute(statement.on_conflict_do_update(index_elements=["key"], set_=changed))


async def _mysql_upsert(session: AsyncSession, documents: Sequence[DocumentText]) -> None:
    from sqlalchemy.dialects.mysql import insert as mysql_insert  # only on MariaDB/MySQL

    statement = mysql_insert(SearchDocument).values(_rows(documents))
    changed = {name: statement.inserted[name] for name in _REWRITTEN}
    await session.execute(statement.on_duplicate_key_update(**changed))


async def delete_keys(session: AsyncSession, keys: Sequence[str]) -> None:
    if keys:
        await session.execute(delete(SearchDocument).where(SearchDocument.key.in_(list(keys))))


async def topic_keys(session: AsyncSession, roadmap_id: int) -> set[str]:
    query = select(SearchDocument.key).where(
        SearchDocument.roadmap_id == roadmap_id, SearchDocument.kind == "topic"
    )
    return set((await session.execute(query)).scalars().all())


async def delete_all(session: AsyncSession) -> None:
    await session.execute(delete(SearchDocument))


async def count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count(SearchDocument.id)))).scalar_one())
