"""Document stages: each takes an Arrow batch of documents, tags it, and returns a drop reason per row."""
