"""Build the run report: one self-contained HTML page with the funnel, drops, score histograms and samples.

The page makes no network requests: plots are inline PNG data URIs, styles are inline, and a
Content-Security-Policy forbids everything else, so a browser reports any outside reference.
"""

from __future__ import annotations

import datetime
import html
import logging
import os
from pathlib import Path

from pipeline.report import plots, rundir, signals

logger = logging.getLogger(__name__)

# Histograms read at most this many rows of kept and of rejected documents each.
HISTOGRAM_MAX_ROWS = 200_000
SAMPLES_PER_REASON = 3
SAMPLE_LINES = 6
SAMPLE_LINE_CHARS = 240

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
img.plot { display: block; max-width: 100%; margin: 0.8em 0; }
.grid { display: flex; flex-wrap: wrap; gap: 0.5em; } .grid img.plot { max-width: 49%; }
.missing { color: #777; font-style: italic; }
.sample { border: 1px solid #ddd; border-left: 4px solid #d0573b; padding: 0.4em 0.8em; margin: 0.6em 0; }
.sample pre { white-space: pre-wrap; word-break: break-word; margin: 0.3em 0; font-size: 0.85em; }
.sample code, td code { word-break: break-all; }
.error { color: #b00020; } code { font-size: 0.9em; }
"""


def write_report(run_dir: str, out_path: str) -> None:
    """Write the HTML report of the run in `run_dir` to `out_path`, replacing it atomically.

    Parts missing from the run (tokens, rejected rows, stats.json itself) are noted on the
    page instead of failing.
    """
    run = Path(run_dir)
    page = render(run)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    temporary.write_text(page, encoding="utf-8")
    os.replace(temporary, out)
    logger.info("wrote report %s", out)


def render(run: Path) -> str:
    stats = rundir.load_stats(run)
    kept_files = rundir.parquet_files(run, rundir.KEPT)
    rejected_files = rundir.parquet_files(run, rundir.REJECTED)
    config = rundir.load_run_config(run)
    limits = signals.thresholds(config)
    sections = [
        summary_section(run, stats),
        funnel_section(stats["stages"]),
        drops_section(stats["stages"]),
        throughput_section(stats["stages"]),
        histograms_section(kept_files, rejected_files, config, limits, run),
        languages_section(kept_files, rejected_files),
        domains_section(kept_files, rejected_files),
        dedup_section(kept_files, rejected_files),
        tokens_section(rundir.load_manifest(run)),
        files_section(stats["files"]),
        samples_section(rejected_files, stats["stages"], limits),
    ]
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>Run report: {escape(run.name)}</title>",
        f"<style>{STYLE}</style></head><body>",
        *sections,
        "</body></html>",
    ])


def escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def image(uri: str, name: str, alt: str) -> str:
    return f'<img class="plot" data-plot="{escape(name)}" alt="{escape(alt)}" src="{uri}">'


def missing(text: str) -> str:
    return f'<p class="missing">{escape(text)}</p>'


def table(headers: list[str], rows: list[list[str]], left: tuple[int, ...] = (0,), attrs: str = "") -> str:
    """Return an HTML table of already escaped cells; the headers at positions `left` align left."""
    head = "".join(f'<th class="text">{escape(h)}</th>' if i in left else f"<th>{escape(h)}</th>" for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = "".join(cell if cell.startswith("<td") else f"<td>{cell}</td>" for cell in row)
        body.append(f"<tr>{cells}</tr>")
    return f"<table {attrs}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def number_cell(value: int | float, stage: str, field: str) -> str:
    """Return a table cell that carries its raw value in data attributes, for comparing with stats.json."""
    shown = f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
    return f'<td data-stage="{escape(stage)}" data-field="{escape(field)}" data-value="{escape(value)}">{shown}</td>'


def summary_section(run: Path, stats: dict) -> str:
    info = stats["run"]
    rows = [
        ("run directory", info.get("run_dir", str(run))),
        ("inputs", len(info.get("inputs", [])) or len(stats["files"])),
        ("started", info.get("started", "?")),
        ("finished", info.get("finished", "?")),
        ("seconds", info.get("seconds", "?")),
        ("documents kept", f"{info['documents_kept']:,}" if "documents_kept" in info else "?"),
        ("tokens", f"{info['tokens']:,}" if "tokens" in info else "?"),
    ]
    generated = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    parts = [f"<h1>Run report: {escape(run.name)}</h1>", f'<p class="missing">generated {escape(generated)}</p>']
    if not stats["stages"] and not stats["files"]:
        parts.append(missing(f"no stats.json with stages in {run}; the run has not finished its stats phase"))
    parts.append(table(["", "value"], [[f'<td class="text">{escape(k)}</td>', escape(v)] for k, v in rows], left=(0, 1)))
    return "\n".join(parts)


def funnel_section(stages: list[dict]) -> str:
    parts = ["<h2>Funnel</h2>"]
    if not stages:
        return "\n".join(parts + [missing("no stages recorded")])
    if any(stage["documents_in"] for stage in stages):
        parts.append(image(plots.funnel(stages), "funnel", "documents and bytes after each stage"))
    else:
        parts.append(missing("no documents entered any stage"))
    fields = ["documents_in", "documents_out", "bytes_in", "bytes_out"]
    rows = []
    for stage in stages:
        name = stage["stage"]
        dropped = sum(stage.get("dropped", {}).values())
        rows.append([f'<td class="text">{escape(name)}</td>', *(number_cell(stage[f], name, f) for f in fields),
                     number_cell(dropped, name, "dropped")])
    parts.append(table(["stage", "documents in", "documents out", "bytes in", "bytes out", "dropped"], rows, attrs='id="funnel"'))
    return "\n".join(parts)


def drops_section(stages: list[dict]) -> str:
    parts = ["<h2>Drops by reason</h2>"]
    rows = [
        [f'<td class="text">{escape(stage["stage"])}</td>', f'<td class="text">{escape(reason)}</td>', f"{count:,}",
         f"{100 * count / stage['documents_in']:.1f}%" if stage["documents_in"] else "-"]
        for stage in stages for reason, count in sorted(stage.get("dropped", {}).items(), key=lambda item: -item[1])
    ]
    if not rows:
        return "\n".join(parts + [missing("no documents were dropped")])
    parts.append(image(plots.drops(stages), "drops", "dropped documents by reason"))
    parts.append(table(["stage", "reason", "documents", "of stage input"], rows, left=(0, 1)))
    return "\n".join(parts)


def throughput_section(stages: list[dict]) -> str:
    parts = ["<h2>Throughput per stage</h2>",
             "<p>Seconds are summed over all workers, so a rate is per worker, not for the whole cluster.</p>"]
    timed = [stage for stage in stages if stage.get("seconds", 0) > 0 and stage["documents_in"] > 0]
    if not timed:
        return "\n".join(parts + [missing("no stage processed documents in measurable time")])
    parts.append(image(plots.throughput(stages), "throughput", "documents per second per stage"))
    rows = [[f'<td class="text">{escape(s["stage"])}</td>', f"{s['seconds']:,.2f}", f"{s['documents_in'] / s['seconds']:,.1f}",
             f"{s['bytes_in'] / s['seconds'] / 1e6:,.2f}"] for s in timed]
    parts.append(table(["stage", "seconds", "documents/s", "input MB/s"], rows))
    return "\n".join(parts)


def histograms_section(kept_files: list[Path], rejected_files: list[Path], config: dict | None, limits: dict, run: Path) -> str:
    parts = ["<h2>Quality signals and classifier scores</h2>"]
    columns = signals.score_columns(rundir.numeric_columns(kept_files + rejected_files), config)
    if not columns:
        return "\n".join(parts + [missing("no score columns in documents/ or rejected/")])
    if not (run / "config.yaml").exists():
        parts.append(missing("no config.yaml in the run directory, so no thresholds are drawn"))
    sampled = rundir.total_rows(kept_files) > HISTOGRAM_MAX_ROWS or rundir.total_rows(rejected_files) > HISTOGRAM_MAX_ROWS
    if sampled:
        parts.append(f"<p>Histograms use a random sample of at most {HISTOGRAM_MAX_ROWS:,} kept and {HISTOGRAM_MAX_ROWS:,} rejected rows.</p>")
    kept = rundir.numeric_values(kept_files, columns, HISTOGRAM_MAX_ROWS)
    rejected = rundir.numeric_values(rejected_files, columns, HISTOGRAM_MAX_ROWS)
    images = [image(plots.histogram(column, kept[column], rejected[column], limits.get(column, [])), f"hist-{column}", f"histogram of {column}")
              for column in columns]
    parts.append(f'<div class="grid">{"".join(images)}</div>')
    return "\n".join(parts)


def languages_section(kept_files: list[Path], rejected_files: list[Path]) -> str:
    parts = ["<h2>Languages</h2>"]
    kept = rundir.value_counts(kept_files, "language")
    rejected = rundir.value_counts(rejected_files, "language")
    if not kept and not rejected:
        return "\n".join(parts + [missing("no language column in this run")])
    parts.append(image(plots.languages(kept, rejected), "languages", "documents per language"))
    rows = [[f'<td class="text">{escape(name)}</td>', f"{kept[name]:,}", f"{rejected[name]:,}"] for name, _ in (kept + rejected).most_common(30)]
    parts.append(table(["language", "kept", "rejected"], rows))
    return "\n".join(parts)


def domains_section(kept_files: list[Path], rejected_files: list[Path]) -> str:
    parts = ["<h2>Top domains</h2>"]
    kept = rundir.value_counts(kept_files, "url", rundir.url_hosts)
    rejected = rundir.value_counts(rejected_files, "url", rundir.url_hosts)
    if not kept and not rejected:
        return "\n".join(parts + [missing("no URLs in this run")])
    images = []
    if kept:
        images.append(image(plots.top_counts(kept, "top domains, kept", plots.KEPT_COLOR), "domains-kept", "top kept domains"))
    if rejected:
        images.append(image(plots.top_counts(rejected, "top domains, dropped", plots.REJECTED_COLOR), "domains-rejected", "top dropped domains"))
    parts.append(f'<div class="grid">{"".join(images)}</div>')
    return "\n".join(parts)


def dedup_section(kept_files: list[Path], rejected_files: list[Path]) -> str:
    parts = ["<h2>Dedup clusters</h2>"]
    sizes = rundir.value_counts(kept_files + rejected_files, "dedup_cluster")
    if not sizes:
        return "\n".join(parts + [missing("no dedup_cluster column in this run")])
    duplicated = sum(1 for size in sizes.values() if size > 1)
    parts.append(f"<p>{len(sizes):,} clusters, {duplicated:,} with more than one document; largest has {max(sizes.values()):,}.</p>")
    parts.append(image(plots.cluster_sizes(sizes), "dedup-clusters", "dedup cluster sizes"))
    return "\n".join(parts)


def tokens_section(manifest: dict | None) -> str:
    parts = ["<h2>Tokens</h2>"]
    if not manifest or not manifest.get("shards"):
        return "\n".join(parts + [missing("no tokens/manifest.json with shards; the run was not tokenized")])
    parts.append(f"<p>{manifest.get('train_tokens', 0):,} train tokens, {manifest.get('val_tokens', 0):,} val tokens, "
                 f"{manifest.get('documents', 0):,} documents, tokenizer {escape(manifest.get('tokenizer', {}).get('name', '?'))}.</p>")
    parts.append(image(plots.token_shards(manifest["shards"]), "tokens", "tokens per shard"))
    return "\n".join(parts)


def files_section(files: dict) -> str:
    parts = ["<h2>Input files and read errors</h2>"]
    if not files:
        return "\n".join(parts + [missing("no per-file stats recorded")])
    with_errors = sum(1 for info in files.values() if file_problems(info))
    parts.append(f"<p>{len(files):,} input files, {with_errors:,} with read errors, damage or failed records.</p>")
    rows = []
    for path, info in sorted(files.items(), key=lambda item: (not file_problems(item[1]), item[0])):
        skipped = ", ".join(f"{escape(k)}: {v:,}" for k, v in sorted(info.get("skipped", {}).items()))
        problems = "<br>".join(f'<span class="error">{escape(problem)}</span>' for problem in file_problems(info))
        rows.append([f'<td class="text"><code>{escape(path)}</code></td>', f"{info.get('records', 0):,}", f"{info.get('documents', 0):,}",
                     f'<td class="text">{skipped}</td>', f"{info.get('bytes_not_parsed', 0):,}", f"{info.get('seconds', 0):,.2f}",
                     f'<td class="text">{problems}</td>'])
    parts.append(table(["file", "records", "documents", "skipped", "bytes not parsed", "seconds", "errors"], rows,
                       left=(0, 3, 6), attrs='id="files"'))
    return "\n".join(parts)


def file_problems(info: dict) -> list[str]:
    """Read errors, damaged byte ranges and failed records of one input file, as lines."""
    problems = list(info.get("errors", []))
    for damage in info.get("damaged", []):
        problems.append(f"damaged at byte {damage.get('offset')}: {damage.get('bytes', 0):,} bytes, {damage.get('reason')}")
    for failed in info.get("failed_records", []):
        problems.append(f"failed record at byte {failed.get('offset')}: {failed.get('error')}")
    return problems


def samples_section(rejected_files: list[Path], stages: list[dict], limits: dict) -> str:
    """List a few rejected documents per drop reason, in stage order, with the score that dropped each."""
    parts = ["<h2>Sampled rejected documents</h2>"]
    by_reason = rundir.sample_rows(rejected_files, SAMPLES_PER_REASON, seed=0, group_by="reason") if rejected_files else {}
    if not by_reason:
        return "\n".join(parts + [missing("no rejected rows in rejected/")])
    order = [(stage["stage"], reason, count) for stage in stages for reason, count in stage.get("dropped", {}).items()]
    listed = [reason for _, reason, _ in order]
    order += [("?", reason, None) for reason in by_reason if reason not in listed]
    for stage, reason, count in order:
        rows = [row for row in by_reason.get(reason, []) if stage == "?" or row.get("stage") == stage]
        if not rows:
            continue
        total = f", {count:,} dropped" if count is not None else ""
        parts.append(f'<h3 id="reason-{escape(stage)}-{escape(reason)}">{escape(stage)}: {escape(reason)}{total}</h3>')
        parts.extend(sample_html(row, limits) for row in rows)
    return "\n".join(parts)


def sample_html(row: dict, limits: dict) -> str:
    columns = signals.reason_columns(row.get("reason"), row) or signals.score_columns([k for k, v in row.items() if v is not None])
    scores = ", ".join(f"{escape(column)} = {escape(format_score(row[column]))}{threshold_note(limits.get(column, []))}" for column in columns)
    return (f'<div class="sample" data-reason="{escape(row.get("reason"))}">'
            f'<div><code>{escape(row.get("url") or row.get("source") or "?")}</code></div>'
            f'<div>id <code>{escape(row.get("id", "?"))}</code></div>'
            f"<div>{scores or 'no score column'}</div><pre>{escape(first_lines(row.get('text') or ''))}</pre></div>")


def threshold_note(limits: list) -> str:
    if not limits:
        return ""
    return " (" + ", ".join(f"{'min' if t.is_minimum else 'max'} {t.value:g}" for t in limits) + ")"


def format_score(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def first_lines(text: str, lines: int = SAMPLE_LINES, width: int = SAMPLE_LINE_CHARS) -> str:
    """Return the first non-empty lines of `text`, each cut to `width` characters."""
    kept = [line.strip() for line in text.splitlines() if line.strip()][:lines]
    return "\n".join(line if len(line) <= width else line[: width - 1] + "…" for line in kept) or "(empty text)"
