"""Fine-tuning methods: the protocol every plugin implements, discovery, and the built-in one."""
