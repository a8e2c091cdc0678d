"""Near-duplicate (MinHash LSH) and exact line deduplication across a whole run, on Ray.

Both functions need an initialized Ray and take the run's kept-document Parquet parts
(columns `id`, `date`, `text`), a config section and a scratch folder. The engine calls:

    from pipeline.dedup import line_dedup, near_dedup

    near = near_dedup(parts, config["dedup"]["minhash"], work_dir=f"{state}/dedup/minhash")
    # near: one row per document, in part and row order, with columns id (string),
    # dedup_cluster (string: the survivor's id, the document's own id when it has no
    # near-duplicate), duplicate (bool: True means drop it) and duplicate_of (string or null).

    stage = line_dedup(parts, config["dedup"]["lines"], f"{state}/dedup/lines", near_duplicates=near)
    # stage: None when dedup.lines.enabled is false. Otherwise a LineDedup stage (see
    # pipeline/stages/base.py) for the write phase: run it on each part's kept rows after
    # removing near-duplicates, e.g. apply_stages([stage], table). It replaces `text`,
    # appends `line_dedup_lines_removed` and drops short documents with reason
    # `line_dedup_too_short`. It pickles as a file path, so Ray workers can receive it.

The survivor of a near-duplicate cluster is the document with the earliest `date`
(ISO 8601 strings compared as text, missing dates last), then the smallest `id`.
`near_dedup` with dedup.minhash.enabled false marks no document as a duplicate.
"""

from pipeline.dedup.lines import LineDedup, line_dedup
from pipeline.dedup.near import near_dedup

__all__ = ["LineDedup", "line_dedup", "near_dedup"]
