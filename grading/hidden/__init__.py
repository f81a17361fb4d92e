"""Hidden tests, one module per exercise module. Never shipped to learners."""
