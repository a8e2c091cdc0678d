"""A decoder-only transformer language model and the trainer that reads the pipeline's token shards.

Entry points: `python -m model.train` trains or resumes a run, `python -m model.generate` samples from it.
"""
