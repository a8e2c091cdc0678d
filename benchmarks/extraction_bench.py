"""Extraction quality and speed: word-level F1 against hand-labelled article text, and pages per CPU-second.

The pages are the scrapinghub article-extraction-benchmark pages in ../shared/data/extraction
(`html/<id>.html.gz` and `ground-truth.json` with `articleBody` per id). F1 is over bags of
lowercased `\\w+` tokens: precision is the share of extracted tokens found in the article,
recall the share of article tokens found in the extract. An empty extract scores 0. Pages
are split into halves by a hash of their id, so a rule tuned on one half can be checked on
the other. Trafilatura runs in the datatrove venv through datatrove's own Trafilatura
extractor class, so its options are the ones FineWeb used.

Usage: python -m benchmarks.extraction_bench [--repeats 3]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import re
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Callable

from benchmarks import _machine

log = logging.getLogger(__name__)

EXTRACTION_DATA = _machine.SHARED_DATA / "extraction"
WORD = re.compile(r"\w+")


def load_pages(folder: Path = EXTRACTION_DATA) -> tuple[dict[str, bytes], dict[str, str]]:
    """Return (HTML bytes by id, article text by id) for every page with ground truth."""
    truth_path = folder / "ground-truth.json"
    if not truth_path.is_file():
        raise FileNotFoundError(f"{truth_path} not found; clone the shared data beside the repository")
    truth = {page_id: entry["articleBody"] for page_id, entry in json.loads(truth_path.read_text(encoding="utf-8")).items()}
    pages = {page_id: gzip.decompress((folder / "html" / f"{page_id}.html.gz").read_bytes()) for page_id in sorted(truth)}
    return pages, truth


def half_of(page_id: str) -> str:
    """Return "A" or "B" by the first byte of a BLAKE2b hash of the id."""
    return "AB"[hashlib.blake2b(page_id.encode(), digest_size=8).digest()[0] % 2]


def word_f1(extracted: str, reference: str) -> tuple[float, float, float]:
    """Return (precision, recall, F1) of the bag of lowercased words of `extracted` against `reference`."""
    predicted = WORD.findall(extracted.lower())
    expected = WORD.findall(reference.lower())
    if not predicted or not expected:
        return (1.0, 1.0, 1.0) if predicted == expected else (0.0, 0.0, 0.0)
    overlap = sum((Counter(predicted) & Counter(expected)).values())
    if overlap == 0:
        return 0.0, 0.0, 0.0
    precision = overlap / len(predicted)
    recall = overlap / len(expected)
    return precision, recall, 2 * precision * recall / (precision + recall)


def time_extractor(extract: Callable[[bytes], str], pages: dict[str, bytes], repeats: int) -> tuple[dict[str, str], list[dict]]:
    """Run `extract` over all pages `repeats` times; return the texts of the last run and each run's timings."""
    runs = []
    texts: dict[str, str] = {}
    for _ in range(repeats):
        with _machine.Timer() as timer:
            texts = {page_id: extract(html) or "" for page_id, html in pages.items()}
        runs.append({"documents": len(pages), "wall_s": timer.wall_s, "cpu_s": timer.cpu_s})
    return texts, runs


# Extractors in the project venv.

def our_extractors() -> dict[str, Callable[[bytes], str]]:
    """Return our Extract stage as configured today, with the proposed options, and bare resiliparse."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    from pipeline.stages.boilerplate import clean_text
    from pipeline.stages.extract import Extract

    default = Extract()
    # Two options the Extract stage does not pass today. resiliparse 2.0 keeps comment
    # sections and post metadata (bylines, dates) in main content by default.
    proposed = Extract()
    proposed.options.update(comments=False, post_meta=False)

    def bare(main_content: bool) -> Callable[[bytes], str]:
        return lambda html: extract_plain_text(bytes_to_str(html, detect_encoding(html)), main_content=main_content)

    return {
        "ours: Extract stage (default config)": lambda html: default.extract_one(html, None)[0],
        "ours: Extract + clean_text": lambda html: clean_text(default.extract_one(html, None)[0]),
        "ours: Extract + comments=False, post_meta=False": lambda html: proposed.extract_one(html, None)[0],
        "ours: proposed (both options + clean_text)": lambda html: clean_text(proposed.extract_one(html, None)[0]),
        "resiliparse main_content=True": bare(True),
        "resiliparse main_content=False": bare(False),
    }


# Trafilatura in the datatrove venv.

def decode_like_datatrove(body: bytes) -> str:
    """Decode a page as datatrove's WarcReader does: UTF-8, else cchardet's guess, else skip."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        import cchardet

        encoding = cchardet.detect(body)["encoding"]
        try:
            return body.decode(encoding) if encoding else ""
        except (UnicodeDecodeError, LookupError):
            return ""


def run_trafilatura_worker(repeats: int) -> None:
    """Extract every page with datatrove's Trafilatura defaults and print the texts and timings."""
    from datatrove.pipeline.extractors import Trafilatura

    extractor = Trafilatura()
    pages, _ = load_pages()
    decoded = {page_id: decode_like_datatrove(body) for page_id, body in pages.items()}
    extractor.extract("<html><body><p>warm-up</p></body></html>")
    runs = []
    texts: dict[str, str] = {}
    for _ in range(repeats):
        with _machine.Timer() as timer:
            texts = {page_id: (extractor.extract(html) if html else "") or "" for page_id, html in decoded.items()}
        runs.append({"documents": len(pages), "wall_s": timer.wall_s, "cpu_s": timer.cpu_s})
    options = {"favour_precision": extractor.favour_precision, "deduplicate": extractor.deduplicate, "include_comments": False}
    versions = _machine.package_versions(["trafilatura", "datatrove"])
    _machine.print_json_line({"texts": texts, "runs": runs, "options": options, "versions": versions})


def score(texts: dict[str, str], truth: dict[str, str]) -> dict:
    """Return mean and median F1 (and mean precision and recall) over all pages and per half."""
    rows = {page_id: word_f1(texts.get(page_id, ""), reference) for page_id, reference in truth.items()}
    result = {}
    for name, ids in (("all", list(rows)), ("A", [i for i in rows if half_of(i) == "A"]), ("B", [i for i in rows if half_of(i) == "B"])):
        f1s = [rows[i][2] for i in ids]
        result[name] = {
            "pages": len(ids),
            "f1_mean": round(statistics.mean(f1s), 4),
            "f1_median": round(statistics.median(f1s), 4),
            "precision_mean": round(statistics.mean(rows[i][0] for i in ids), 4),
            "recall_mean": round(statistics.mean(rows[i][1] for i in ids), 4),
        }
    return result


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description="Extraction F1 and pages per CPU-second against trafilatura.")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the pages; the best is reported")
    parser.add_argument("--trafilatura-repeats", type=int, default=2, help="timed passes for trafilatura")
    parser.add_argument("--worker", choices=["trafilatura"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        run_trafilatura_worker(args.trafilatura_repeats)
        return None

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    pages, truth = load_pages()
    rows = {}
    log.info("trafilatura (datatrove venv) on %d pages", len(pages))
    trafilatura = _machine.run_worker(_machine.ensure_datatrove_venv(), "benchmarks.extraction_bench",
                                      ["--worker", "trafilatura", "--trafilatura-repeats", str(args.trafilatura_repeats)])
    rows["trafilatura (datatrove defaults, FineWeb's settings)"] = {
        "scores": score(trafilatura["texts"], truth), **_machine.summarize_runs(trafilatura["runs"]),
        "options": trafilatura["options"], "versions": trafilatura["versions"],
    }
    for name, extract in our_extractors().items():
        log.info("%s on %d pages", name, len(pages))
        texts, runs = time_extractor(extract, pages, args.repeats)
        rows[name] = {"scores": score(texts, truth), **_machine.summarize_runs(runs)}

    reference = rows["trafilatura (datatrove defaults, FineWeb's settings)"]
    for row in rows.values():
        row["speed_vs_trafilatura"] = round(row["docs_per_cpu_s_best"] / reference["docs_per_cpu_s_best"], 2)
        row["f1_minus_trafilatura"] = round(row["scores"]["all"]["f1_mean"] - reference["scores"]["all"]["f1_mean"], 4)
    result = {
        "command": "python -m benchmarks.extraction_bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": _machine.machine_facts(),
        "pages": len(pages),
        "versions": _machine.package_versions(["resiliparse", "crawl-pipeline"]),
        "extractors": rows,
    }
    path = _machine.write_result("extraction_bench", result)

    print(f"extraction on {len(pages)} article-benchmark pages, {result['machine']['cpu_model']}, one process")
    print(f"{'extractor':<52} {'F1 mean':>8} {'median':>7} {'A':>7} {'B':>7} {'pages/CPU-s':>12} {'x traf':>7}")
    for name, row in rows.items():
        s = row["scores"]
        print(f"{name:<52} {s['all']['f1_mean']:>8.4f} {s['all']['f1_median']:>7.4f} {s['A']['f1_mean']:>7.4f} "
              f"{s['B']['f1_mean']:>7.4f} {row['docs_per_cpu_s_best']:>12.1f} {row['speed_vs_trafilatura']:>7.1f}")
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
