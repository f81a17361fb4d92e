"""The package you fill in as you work through the course.

Each chapter's exercises live in a module named after what they hold (``exercises.data`` for
chapter 1, ``exercises.layers`` for chapter 2's layers, ...): these are the only files you edit.
``exercises.checks`` holds the visible checks (``check("relu")``) and ``exercises.kit`` the course's
given code (datasets, devices, figures, training helpers, Colab, progress): you use it, never edit it.
Importing this package imports nothing heavy.
"""
