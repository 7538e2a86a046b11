-- Suggest's first step (es_core/suggestions/matching.py, ``resolve``) as a function: each typed
-- word to the vocabulary words it may stand for, with the typos between them. The statement
-- was planned anew on every keystroke (half a millisecond, a third of its cost); in a plpgsql
-- function it is planned once per connection and the plan kept, which is safe here because
-- its plan does not depend on the words typed: every part is an index lookup per typed word
-- (primary key, key equality, a range, the trigram index). The settings it needs travel with
-- the function instead of being made on the session.
--
-- Arguments: the typed words, their allowed edits and whether each is a prefix (the last word
-- still being typed), in order; the swaps (the typed word with two adjacent characters
-- swapped) and the deletion-neighbourhood keys of each, by position (1-based).
-- Rows: position, vocabulary word, edits, and the length of the word the typed word covers.
--
-- The constants are matching.py's: MAX_TRIGRAM_WORDS 200, TRIGRAM_CHARS 5, KEYED_CHARS 8,
-- MAX_PREFIX_WORDS 2000, SIMILARITY_THRESHOLD 0.2, WORD_SIMILARITY_THRESHOLD 0.3.
CREATE FUNCTION suggestion_candidates(
    text[], integer[], boolean[], integer[], text[], integer[], text[]
) RETURNS TABLE (pos bigint, word text, edits integer, length integer)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET pg_trgm.similarity_threshold = 0.2
SET pg_trgm.word_similarity_threshold = 0.3
AS $fn$
#variable_conflict use_column
BEGIN
RETURN QUERY
WITH typed AS (
    SELECT * FROM unnest($1, $2, $3) WITH ORDINALITY AS t(typed, k, as_prefix, pos)
), swap_lists AS (
    SELECT s.pos, array_agg(s.swap) AS swaps FROM unnest($4, $5) AS s(pos, swap)
    GROUP BY s.pos
), keyed AS (
    SELECT DISTINCT l.pos, k.word
    FROM unnest($6, $7) AS l(pos, key)
    JOIN suggestion_word_keys AS k ON k.key = l.key
), trigram AS (
    -- Only for words the keys do not cover: longer than 8 characters, or 2 typos allowed.
    SELECT t.pos, w.word FROM typed AS t, LATERAL (
        SELECT sw.word FROM suggestion_words AS sw WHERE sw.word % t.typed
        ORDER BY sw.word <-> t.typed LIMIT 200) AS w
    WHERE t.k > 0 AND NOT t.as_prefix AND length(t.typed) >= 5
      AND (t.k > 1 OR length(t.typed) > 8)
    UNION ALL
    SELECT t.pos, w.word FROM typed AS t, LATERAL (
        SELECT sw.word FROM suggestion_words AS sw WHERE t.typed <% sw.word
        ORDER BY t.typed <<-> sw.word LIMIT 200) AS w
    WHERE t.k > 0 AND t.as_prefix AND length(t.typed) >= 5
      AND (t.k > 1 OR length(t.typed) > 8)
), measured AS (
    SELECT f.pos, f.word,
           suggestion_edits(t.typed, coalesce(s.swaps, '{}'), f.word, t.k, t.as_prefix) AS e
    FROM (SELECT kd.pos, kd.word FROM keyed AS kd
          UNION SELECT tg.pos, tg.word FROM trigram AS tg) AS f
    JOIN typed AS t ON t.pos = f.pos
    LEFT JOIN swap_lists AS s ON s.pos = f.pos
    -- The lengths alone rule out most key matches (keys come from prefixes of every length):
    -- a whole word within k edits differs in length by at most k; a word whose beginning
    -- matches is at least the typed length less k.
    WHERE CASE WHEN t.as_prefix THEN length(f.word) >= length(t.typed) - t.k
               ELSE abs(length(f.word) - length(t.typed)) <= t.k END
)
SELECT t.pos, w.word::text, 0, length(w.word)
FROM typed AS t JOIN suggestion_words AS w ON w.word = t.typed
WHERE NOT t.as_prefix
UNION ALL
SELECT t.pos, w.word::text, 0, length(t.typed)
FROM typed AS t, LATERAL (
    SELECT sw.word FROM suggestion_words AS sw
    WHERE sw.word >= t.typed AND sw.word < t.typed || chr(1114111)
      AND starts_with(sw.word, t.typed)
    ORDER BY length(sw.word), sw.word LIMIT 2000) AS w
WHERE t.as_prefix
UNION ALL
SELECT m.pos, m.word::text, m.e[1], m.e[2] FROM measured AS m
WHERE m.e IS NOT NULL AND m.e[1] > 0;
END
$fn$;

-- A long typed word with two typos can share too few trigrams with the word meant for the
-- similarity threshold above ("lcasternd" and "clastrend": 0.11): when a typed word that may
-- have two typos found no candidate at all, Suggest asks again at lower thresholds, for that
-- word alone (a looser lookup of more words, paid only when the first found nothing).
-- Arguments: the typed word, its allowed edits, whether it is a prefix, its swaps.
CREATE FUNCTION suggestion_far_candidates(text, integer, boolean, text[])
RETURNS TABLE (word text, edits integer, length integer)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET pg_trgm.similarity_threshold = 0.1
SET pg_trgm.word_similarity_threshold = 0.15
AS $fn$
#variable_conflict use_column
BEGIN
RETURN QUERY
SELECT m.word::text, m.e[1], m.e[2] FROM (
    SELECT f.word, suggestion_edits($1, $4, f.word, $2, $3) AS e FROM (
        (SELECT sw.word FROM suggestion_words AS sw WHERE NOT $3 AND sw.word % $1
         ORDER BY sw.word <-> $1 LIMIT 500)
        UNION ALL
        (SELECT sw.word FROM suggestion_words AS sw WHERE $3 AND $1 <% sw.word
         ORDER BY $1 <<-> sw.word LIMIT 500)
    ) AS f
    WHERE CASE WHEN $3 THEN length(f.word) >= length($1) - $2
               ELSE abs(length(f.word) - length($1)) <= $2 END
) AS m
WHERE m.e IS NOT NULL AND m.e[1] > 0;
END
$fn$;
