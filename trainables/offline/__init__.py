"""Datasets as an experience source: recorded transitions on disk (Minari or .npz), read
into plain arrays that every offline algorithm trains from."""
