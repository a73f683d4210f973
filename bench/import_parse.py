"""`python -m bench.import_parse`: what parsing an import costs, and that it grows with the file.

An import's parse runs in a thread of the worker (roadmaps/service.py), holding the GIL most of
the time: whatever it costs, the worker's other requests wait through part of it. This parses
generated documents in this process and prints the CPU time of each, median of `--rounds`:

- checklists of 1,000, 2,000 and 4,000 distinct items in markdown and in YAML, with the CPU per
  thousand items and each size's time as a ratio to the smallest (a parse that grows with the
  file stays near 1, 2 and 4: a doubling that costs four times is quadratic);
- the hostile ones, each a file an attacker may send: a megabyte of one-character markdown
  items, a megabyte of YAML list entries, a YAML alias bomb of 2 kB (nine levels of nine
  topics: 387 million as written) and 5,001 distinct items in one list. Each is refused; the
  figure is how long the refusal took, as a ratio to parsing the 1,000-item checklist.

    .venv/bin/python -m bench.import_parse
    .venv/bin/python -m bench.import_parse --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from skilltree.roadmaps.document import iter_topics
from skilltree.roadmaps.importing import ImportFormat, RoadmapImportError, parse_roadmap

SIZES = (1_000, 2_000, 4_000)
MEGABYTE = 1_048_576


def markdown_checklist(items: int) -> bytes:
    sections = "".join(
        f"## Section {section}\n\n"
        + "".join(f"- [ ] Topic {section}-{n} - what it is\n" for n in range(20))
        + "\n"
        for section in range(items // 20)
    )
    return f"# A checklist\n\n{sections}".encode()


def yaml_checklist(items: int) -> bytes:
    sections = "".join(
        f"  - title: Section {section}\n    children:\n"
        + "".join(f"      - title: Topic {section}-{n}\n" for n in range(20))
        for section in range(items // 20)
    )
    return f"title: A checklist\ntopics:\n{sections}".encode()


def alias_bomb(levels: int = 9) -> bytes:
    """A YAML document of about 2 kB whose aliases stand for 9 ** levels topics."""
    lines = ["title: R", "l0: &l0 [" + ", ".join(f"{{title: t{k}}}" for k in range(9)) + "]"]
    for n in range(1, levels):
        topics = ", ".join(f"{{title: t{k}, children: *l{n - 1}}}" for k in range(9))
        lines.append(f"l{n}: &l{n} [{topics}]")
    lines.append(f"topics: *l{levels - 1}")
    return "\n".join(lines).encode()


HOSTILE: dict[str, tuple[Callable[[], bytes], ImportFormat]] = {
    "a megabyte of one-character markdown items": (
        lambda: (b"# R\n\n" + b"- x\n" * MEGABYTE)[:MEGABYTE],
        "markdown",
    ),
    "a megabyte of YAML list entries": (
        lambda: (b"title: R\ntopics:\n" + b"  - title: x\n" * MEGABYTE)[:MEGABYTE],
        "yaml",
    ),
    "a YAML alias bomb of 2 kB": (alias_bomb, "yaml"),
    "5,001 distinct markdown items in one list": (
        lambda: ("# R\n\n" + "".join(f"- item {n}\n" for n in range(5_020))).encode(),
        "markdown",
    ),
}


def cpu_seconds(data: bytes, fmt: ImportFormat) -> tuple[float, str]:
    """This process's CPU time to parse `data`, and what came of it."""
    started = time.process_time()
    try:
        parsed = parse_roadmap(data, fmt)
        outcome = f"{len(iter_topics(parsed.document.topics))} topics"
    except RoadmapImportError as refused:
        outcome = f"refused: {refused.detail[:70]}"
    return time.process_time() - started, outcome


def median_cpu(data: bytes, fmt: ImportFormat, rounds: int) -> tuple[float, str]:
    results = [cpu_seconds(data, fmt) for _ in range(rounds)]
    return statistics.median(seconds for seconds, _ in results), results[0][1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    baseline = 0.0
    checklists: tuple[tuple[ImportFormat, Callable[[int], bytes]], ...] = (
        ("markdown", markdown_checklist),
        ("yaml", yaml_checklist),
    )
    for fmt, make in checklists:
        print(f"\n{fmt}: items | bytes | ms CPU | ms per 1,000 items | × {SIZES[0]:,} items' time")
        smallest = 0.0
        for size in SIZES:
            data = make(size)
            seconds, _ = median_cpu(data, fmt, args.rounds)
            smallest = smallest or seconds
            if fmt == "markdown" and size == SIZES[0]:
                baseline = seconds
            print(
                f"{size:,} | {len(data):,} | {1000 * seconds:.0f} | "
                f"{1_000_000 * seconds / size:.0f} | {seconds / smallest:.2f}"
            )
    print(f"\nhostile | bytes | ms CPU | × the {SIZES[0]:,}-item markdown parse | outcome")
    for name, (make_hostile, fmt) in HOSTILE.items():
        data = make_hostile()
        seconds, outcome = median_cpu(data, fmt, args.rounds)
        print(
            f"{name} | {len(data):,} | {1000 * seconds:.0f} | {seconds / baseline:.2f} | {outcome}"
        )


if __name__ == "__main__":
    main()
