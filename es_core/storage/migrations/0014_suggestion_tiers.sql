-- Suggest in tiers (es_core/suggestions/matching.py): the cheap tiers are asked first and the
-- costly ones only when the cheap ones leave the limit unfilled.
--
-- EXACT and PREFIX: a phrase starts with the typed words when its tokens, joined by single
-- spaces, start with the typed words joined the same way: one range of a btree in byte order
-- (C collation), however many vocabulary words a short last word stands for. The weight index
-- lets the planner walk phrases heaviest first instead, when the range holds many of them.
CREATE FUNCTION suggestion_joined(tokens text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT array_to_string(tokens, ' ')
$fn$;

ALTER TABLE suggestion_phrases
    ADD COLUMN joined text COLLATE "C" GENERATED ALWAYS AS (suggestion_joined(tokens)) STORED;
CREATE INDEX suggestion_phrases_joined_idx ON suggestion_phrases (joined);
CREATE INDEX suggestion_phrases_weight_idx ON suggestion_phrases (weight DESC);

-- FUZZY: start-aligned phrases, found by the candidates of the first typed word.
CREATE INDEX suggestion_phrases_first_token_idx ON suggestion_phrases ((tokens[1]));
