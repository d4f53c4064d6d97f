"""Task families: what a model's outputs mean, how they are scored and printed."""
