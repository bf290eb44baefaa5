"""The model side of Copydesk.

Everything here except ``tasks`` works on plain dataclasses and never imports Django, so the
engine, prompts and checks run in a notebook or on a GPU box without the web stack.
"""
