"""Reference solutions: the one source the learner stubs in ``exercises/`` are generated from.

``solutions.<name>`` is the reference of ``exercises.<name>``. The learner's part of each function
sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``; ``python -m grading stubs`` writes
the stubs, and CI fails when they drift. Never shipped to learners.
"""
