"""Archive readers: WARC, WET and ARC records to candidate documents."""
