"""Content by reference: loaders that read items where they already live (buckets, tables,
files, URLs), configured by settings and chosen by each source's ``loader`` name."""
