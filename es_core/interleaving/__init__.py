"""Online interleaving of the green and blue collections: team-draft, credits, verdict."""
