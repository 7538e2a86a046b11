-- Query suggestions: a dictionary of weighted phrases, and the vocabulary of their words that
-- typed words are resolved against (exactly, as a prefix, or with typos).
--
-- A phrase's identity is its normalised text (NFKC, case folded, accents stripped, whitespace
-- collapsed: es_core/suggestions/text.py); its tokens are the normalised words in phrase order.
-- Suggest resolves each typed word to candidate vocabulary words first (suggestion_words and
-- suggestion_word_keys, both small beside the phrases), then finds the phrases holding them
-- through the GIN index on tokens (es_core/suggestions/matching.py).

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;

CREATE TABLE suggestion_phrases (
    phrase_id   text PRIMARY KEY,
    phrase      text NOT NULL,
    -- Byte order (C collation): prefix ranges and keyset pages use the unique index.
    normalised  text COLLATE "C" NOT NULL UNIQUE,
    tokens      text[] NOT NULL,
    -- '' is the default domain; a phrase keeps at least one.
    domains     text[] NOT NULL CHECK (cardinality(domains) > 0),
    labels      text[] NOT NULL DEFAULT '{}',
    weight      double precision NOT NULL CHECK (weight >= 0),
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now()
);
-- fastupdate off: Suggest reads these indexes on every keystroke, and a GIN pending list
-- (what fastupdate defers) is scanned whole by every read until vacuum merges it: after a bulk
-- load that made lookups of a few words take 100 ms instead of 1.
CREATE INDEX suggestion_phrases_tokens_idx ON suggestion_phrases USING gin (tokens)
    WITH (fastupdate = off);
CREATE INDEX suggestion_phrases_domains_idx ON suggestion_phrases USING gin (domains)
    WITH (fastupdate = off);
CREATE INDEX suggestion_phrases_labels_idx ON suggestion_phrases USING gin (labels);
CREATE INDEX suggestion_phrases_trgm_idx ON suggestion_phrases USING gin (normalised gin_trgm_ops);

-- Every distinct token of every phrase ever added (words are not removed with their last
-- phrase: a word no phrase holds only costs a candidate that finds nothing).
CREATE TABLE suggestion_words (
    word text COLLATE "C" PRIMARY KEY
);
CREATE INDEX suggestion_words_trgm_idx ON suggestion_words USING gin (word gin_trgm_ops)
    WITH (fastupdate = off);

-- The deletion neighbourhood of each word's short prefixes: for every prefix of 3 to 8
-- characters, the prefix itself and each string one deletion away from it. Two strings within
-- one edit (insertion, deletion, substitution or adjacent transposition) share a key, so a
-- typed word of up to 8 characters finds every word (or word prefix) one typo away through
-- equality lookups, where trigrams of a short word say too little.
CREATE TABLE suggestion_word_keys (
    key  text COLLATE "C" NOT NULL,
    word text COLLATE "C" NOT NULL,
    PRIMARY KEY (key, word)
);

CREATE FUNCTION suggestion_keys_of(word text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT DISTINCT k
    FROM generate_series(3, least(8, length(word))) AS m,
         LATERAL (SELECT left(word, m) AS p) AS p,
         LATERAL (
             SELECT p.p
             UNION ALL
             SELECT left(p.p, i - 1) || substr(p.p, i + 1) FROM generate_series(1, m) AS i
         ) AS d(k)
$fn$;

-- The typos between a typed word and a vocabulary word, when at most max_edits, with the
-- length of the word that matched: the whole word, or (as_prefix) the prefix of it closest to
-- the typed word. Edits are Levenshtein distances from fuzzystrmatch; one adjacent
-- transposition counts as one edit through `swaps` (the typed word with each adjacent pair
-- swapped, made by the caller). NULL when further than max_edits.
CREATE FUNCTION suggestion_edits(
    typed text, swaps text[], word text, max_edits integer, as_prefix boolean
) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
DECLARE
    n integer := length(typed);
    best integer := max_edits + 1;
    best_len integer;
    d integer;
    m integer;
    j integer;
    v text;
BEGIN
    IF NOT as_prefix THEN
        IF abs(length(word) - n) > max_edits THEN
            RETURN NULL;
        END IF;
        best := levenshtein_less_equal(typed, word, max_edits);
        IF best > 1 AND max_edits >= 1 THEN
            FOREACH v IN ARRAY swaps LOOP
                d := 1 + levenshtein_less_equal(v, word, max_edits - 1);
                IF d < best THEN
                    best := d;
                END IF;
            END LOOP;
        END IF;
        RETURN CASE WHEN best <= max_edits THEN ARRAY[best, length(word)] END;
    END IF;
    IF left(word, n) = typed THEN
        RETURN ARRAY[0, n];
    END IF;
    -- Prefix lengths nearest the typed length first (n, n-1, n+1, n-2, ...), so a tie keeps
    -- the closest; one edit is the best left once the exact prefix failed.
    FOR j IN 0 .. 2 * max_edits LOOP
        m := n + CASE WHEN j % 2 = 1 THEN -(j + 1) / 2 ELSE j / 2 END;
        CONTINUE WHEN m < 1 OR m > length(word);
        d := levenshtein_less_equal(typed, left(word, m), max_edits);
        IF d > 1 AND max_edits >= 1 THEN
            FOREACH v IN ARRAY swaps LOOP
                d := least(d, 1 + levenshtein_less_equal(v, left(word, m), max_edits - 1));
            END LOOP;
        END IF;
        IF d < best THEN
            best := d;
            best_len := m;
            EXIT WHEN best <= 1;
        END IF;
    END LOOP;
    RETURN CASE WHEN best <= max_edits THEN ARRAY[best, best_len] END;
END
$fn$;
