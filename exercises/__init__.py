"""The package you fill in as you work through the course.

Each chapter's exercises live in a module named after what they hold
(``exercises.layers`` for chapter 2's layers, and so on); the other modules
(``devices``, ``datasets``, ``checks``, ...) are the course's own helpers.
Importing this package imports nothing heavy.
"""
