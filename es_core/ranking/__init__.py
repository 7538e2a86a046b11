"""How results are ordered: vector, lexical (BM25) or hybrid ranking, fused with business
signals, versioned per collection, with weights learned from clicks."""
