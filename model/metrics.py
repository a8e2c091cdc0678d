"""Training metrics sinks: a JSONL file in the checkpoint directory and an optional TensorBoard writer.

Only the process of rank 0 writes; the trainer creates this object there.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

METRICS_NAME = "metrics.jsonl"


class MetricsWriter:
    """Append one JSON object per record to CKPT_DIR/metrics.jsonl, and mirror numbers to TensorBoard."""

    def __init__(self, ckpt_dir: Path, resume_step: int = 0, tensorboard: bool = False):
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.path = ckpt_dir / METRICS_NAME
        if self.path.exists():
            _drop_records_after(self.path, resume_step)
        self.file = self.path.open("a", encoding="utf-8")
        self.tensorboard = _open_tensorboard(ckpt_dir / "tensorboard") if tensorboard else None

    def write(self, record: dict[str, Any]) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.tensorboard is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(key, value, record["step"])

    def close(self) -> None:
        self.file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def read_metrics(ckpt_dir: str | Path) -> list[dict[str, Any]]:
    """Return the records of CKPT_DIR/metrics.jsonl in file order."""
    with (Path(ckpt_dir) / METRICS_NAME).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _drop_records_after(path: Path, step: int) -> None:
    """Remove records of steps after the checkpoint being resumed, which the resumed run writes again."""
    records = [r for r in read_metrics(path.parent) if r.get("step", 0) <= step]
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    tmp.replace(path)


def _open_tensorboard(log_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        logger.warning("train.tensorboard is true but the tensorboard package is not installed "
                       "(pip install tensorboard); writing metrics.jsonl only")
        return None
    return SummaryWriter(log_dir=str(log_dir))
