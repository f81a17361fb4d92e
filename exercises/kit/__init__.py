"""Given code: the course's own helpers, used by the notebooks and by your exercises. Never edited.

Grouped by what they do:

* data and downloads: ``datasets`` (the datasets, normalization constants, a new image of a digit),
  ``download`` (verified, cached downloads and local mirrors);
* devices and seeding: ``devices``;
* figures: ``figures``;
* training helpers: ``training`` (loaders on the device, augmentation, the schedule, the epochs loop,
  chapter 5's quick model), ``checkpoints`` (save, resume, load and export a model) and ``speedrun``
  (chapter 4's fast CIFAR-10 network and recipe);
* input validation the exercises share: ``validate``;
* Colab: ``colab``;
* progress and updates: ``progress`` (your practice history), ``update`` (a new release without losing
  work), and ``catalogue`` (which modules are exercises, of which chapter).
"""
