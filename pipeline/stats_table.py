"""Render stats.json as the terminal table that `run` and `stats` print."""

from __future__ import annotations

from typing import Any


def format_stats(stats: dict[str, Any]) -> str:
    rows = [("stage", "in", "out", "dropped", "seconds", "docs/s")]
    reasons: list[str] = []
    for stage in stats["stages"]:
        dropped = stage["documents_in"] - stage["documents_out"]
        rate = stage["documents_in"] / stage["seconds"] if stage["seconds"] else 0.0
        rows.append((stage["stage"], str(stage["documents_in"]), str(stage["documents_out"]), str(dropped),
                     f"{stage['seconds']:.2f}", f"{rate:,.0f}"))
        for reason, count in sorted(stage["dropped"].items(), key=lambda item: -item[1]):
            reasons.append(f"  {stage['stage']:<18} {reason:<32} {count:>8}")

    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    if reasons:
        lines += ["", "drops by reason:"] + reasons

    run = stats.get("run", {})
    tokens = stats.get("tokens") or {}
    lines.append("")
    lines.append(
        f"kept {run.get('documents_kept', 0)} documents, {run.get('tokens', 0):,} tokens "
        f"({tokens.get('train_tokens', 0):,} train, {tokens.get('val_tokens', 0):,} val) "
        f"in {run.get('seconds', 0):.1f} s"
    )
    errors = {path: info["errors"] for path, info in stats.get("files", {}).items() if info.get("errors")}
    for path, messages in errors.items():
        lines.append(f"read errors in {path}: {'; '.join(messages)}")
    return "\n".join(lines)
