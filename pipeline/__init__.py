"""Common Crawl archives to filtered Parquet documents and token shards, on Ray Data."""

__version__ = "0.1.0"
