"""Reindexing: a green collection filled from another, every item re-encoded by its model.

``start`` creates the destination and the parent task; ``ranges`` splits the source into key
ranges, each copied by a subtask (``copy_range``, page by page through ``pages``); ``parent``
plans the subtasks and settles the parent from them; ``categories`` is the parent's first
step, which brings the source model's categories to the destination's model.
"""
