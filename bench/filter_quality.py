"""Print the filter's precision and recall per language on the labelled corpus.

    python bench/filter_quality.py [--corpus DIR] [--rules FILE] [--quiet] [--as-classified]

The corpus (tests/fixtures/corpus/*.yaml) is written by the team; the floors CI holds the
rules to are in tests/fixtures/corpus/baseline.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from extract import format_report, load_corpus, load_rules, score_corpus  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO / "tests" / "fixtures" / "corpus")
    parser.add_argument("--rules", type=Path, default=REPO / "config" / "rules.yaml")
    parser.add_argument("--quiet", action="store_true", help="only the table, no ids")
    parser.add_argument("--as-classified", action="store_true",
                        help="score each story as `dwatch classify` scores a saved .txt file "
                             "(headline found in the text, language detected)")
    args = parser.parse_args()
    ruleset = load_rules(args.rules)
    items = load_corpus(args.corpus)
    started = time.perf_counter()
    report = score_corpus(ruleset, items, as_classified=args.as_classified)
    elapsed = time.perf_counter() - started
    print(format_report(report, details=not args.quiet))
    print(f"{len(items)} stories scored in {elapsed:.2f} s ({len(items) / elapsed:.0f} stories/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
