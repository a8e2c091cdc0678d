"""Document stages: each takes an Arrow batch of documents, tags it, and says what to drop."""
