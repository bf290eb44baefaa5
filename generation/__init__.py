"""The model side of Copydesk, as a library: engine, prompts, decoding, checks, drafting,
fine-tuning and parameters.

It never imports Django or Celery (``tests/generation/test_imports.py``): it works on plain
dataclasses, so the engine, prompts and checks run in a notebook or on a GPU box without the web
stack. The Celery tasks that feed it rows live in ``editorial/workers/``.
"""
