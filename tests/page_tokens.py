"""The page token signer tests use where they page without a server: one fixed key (a stack
signs with its own, kept in its database or set by ES_PAGE_TOKEN_KEYS)."""

from __future__ import annotations

from es_core.page_tokens import PageTokens

TEST_KEY = b"tests-page-token-key-0123456789"
TOKENS = PageTokens([TEST_KEY])
