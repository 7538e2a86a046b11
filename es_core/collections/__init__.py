"""Collections through their life: listing, the blue switch, deletion, and which collections a
write must reach while a reindex fills a green one."""
