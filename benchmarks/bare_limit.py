"""The per-core limit: the same WARC through fastwarc, resiliparse and fastText in one plain loop.

The bare loop does exactly this per record, with no tables, stats or output files:
1. fastwarc reads response records with HTTP parsing; it keeps HTTP 200 responses whose
   Content-Type contains "html" and reads the whole body;
2. resiliparse decodes the body by its detected encoding and extracts the text with the
   options of our Extract stage (main_content, preserve_formatting, list_bullets, no alt texts);
3. fastText lid.176.ftz predicts the language of the text on one line. A page is kept when
   the text is not empty and the top label is English with a score of at least 0.65.
Each worker runs the loop once on a small real WARC before the timed run, as the other sides do.
Our side is `process_file` with the same three stages only ("lite": read, extract, langid),
so the ratio is the overhead the pipeline adds to the same work; the full pipeline with
every rule is reported beside it.

Usage: python -m benchmarks.bare_limit [--records 600] [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from benchmarks import _machine

log = logging.getLogger(__name__)

SIDES = ("bare", "ours-lite", "ours-full")

# The same small real crawl that process_bench's workers process once before timing.
WARMUP_WARC = _machine.SHARED_DATA / "warc" / "wget-crawl-en-0000.warc.gz"
EXTRACT_OPTIONS = dict(main_content=True, preserve_formatting=True, list_bullets=True, alt_texts=False)


def bare_loop(warc: Path, lid_model: Path, language: str = "en", min_score: float = 0.65) -> dict:
    """Read, extract and identify the language of every HTML page of `warc`; return counts and timings."""
    import fasttext
    from fastwarc.warc import ArchiveIterator, WarcRecordType
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    documents = kept = 0
    label = f"__label__{language}"
    with _machine.Timer() as timer:
        model = fasttext.load_model(str(lid_model))
        with open(warc, "rb") as stream:
            for record in ArchiveIterator(stream, record_types=WarcRecordType.response, parse_http=True):
                if record.http_headers is None or record.http_headers.status_code != 200:
                    continue
                if "html" not in (record.http_headers.get("Content-Type") or ""):
                    continue
                body = record.reader.read()
                documents += 1
                html = bytes_to_str(body, detect_encoding(body))
                text = extract_plain_text(html, **EXTRACT_OPTIONS).strip()
                if not text:
                    continue
                labels, scores = model.predict(" ".join(text.split()), k=1)
                if labels and labels[0] == label and scores[0] >= min_score:
                    kept += 1
    return {
        "side": "bare",
        "documents": documents,
        "kept": kept,
        "wall_s": timer.wall_s,
        "cpu_s": timer.cpu_s,
        "versions": _machine.package_versions(["fastwarc", "resiliparse", "fasttext-numpy2"]),
    }


def measure(side: str, warc: Path, lid_model: Path) -> dict:
    """Run one side on `warc` in a fresh subprocess of this interpreter."""
    if side == "bare":
        args = ["--worker", "--lid-model", str(lid_model), "--warmup", str(WARMUP_WARC), str(warc)]
        return _machine.run_worker(sys.executable, "benchmarks.bare_limit", args)
    from benchmarks import process_bench

    return process_bench.measure(side, [warc], lid_model, warmup=process_bench.WARMUP_WARC)[0]


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description="Our process phase against a bare fastwarc + resiliparse + fastText loop.")
    parser.add_argument("--records", type=int, default=600, help="HTML responses in the generated WARC")
    parser.add_argument("--repeats", type=int, default=3, help="runs per side; the best and the median are reported")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lid-model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("warc", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        if args.warmup is not None:
            bare_loop(args.warmup, args.lid_model)
        _machine.print_json_line(bare_loop(args.warc, args.lid_model))
        return None

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from pipeline.stages.langid import bundled_lid_model

    lid_model = bundled_lid_model()
    warc = _machine.bench_warc(args.records)
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    for repeat in range(args.repeats):
        for side in SIDES:
            log.info("bare limit: %s, run %d of %d, on %s", side, repeat + 1, args.repeats, warc.name)
            runs[side].append(measure(side, warc, lid_model))

    sides = {}
    for side, side_runs in runs.items():
        sides[side] = {
            **_machine.summarize_runs(side_runs),
            "documents": side_runs[0]["documents"],
            "kept": side_runs[0]["kept"],
            "runs": [{"wall_s": round(run["wall_s"], 3), "cpu_s": round(run["cpu_s"], 3)} for run in side_runs],
        }
    bare = sides["bare"]
    result = {
        "command": "python -m benchmarks.bare_limit " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": _machine.machine_facts(),
        "input": warc.name,
        "bare_loop_steps": "fastwarc read (HTTP 200, html) -> resiliparse extract_plain_text(main_content=True, "
                           "preserve_formatting=True, list_bullets=True) -> fastText lid.176.ftz, keep en >= 0.65",
        "sides": sides,
        "share_of_limit": {
            side: {
                "best": round(sides[side]["docs_per_cpu_s_best"] / bare["docs_per_cpu_s_best"], 3),
                "median": round(sides[side]["docs_per_cpu_s_median"] / bare["docs_per_cpu_s_median"], 3),
            }
            for side in ("ours-lite", "ours-full")
        },
        "versions": runs["bare"][0]["versions"],
    }
    path = _machine.write_result("bare_limit", result)

    print(f"bare limit on {warc.name}, {result['machine']['cpu_model']}, {result['machine']['logical_cpus']} CPUs, one process per side")
    print(f"{'side':<12} {'docs/CPU-s best':>16} {'median':>8} {'docs/wall-s best':>17} {'docs':>6} {'kept':>6}")
    for side, row in sides.items():
        print(f"{side:<12} {row['docs_per_cpu_s_best']:>16.2f} {row['docs_per_cpu_s_median']:>8.2f} "
              f"{row['docs_per_wall_s_best']:>17.2f} {row['documents']:>6} {row['kept']:>6}")
    for side, share in result["share_of_limit"].items():
        print(f"{side} / bare: {share['best']:.3f} (best runs), {share['median']:.3f} (medians)")
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
