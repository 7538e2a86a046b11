"""The way in of every item, inline or by reference: read (fetch), decode (parse), clean
(preprocess), split, encode, store, with a failure at any step failing that item alone."""
